import { Hono } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, refuse, times } from "./admin-body";
import { issueReceipt } from "./apple-receipts";
import { applyRevocation, appleTransactions, CreateAppleTransaction, createAppleTransaction, signTransaction, UpdateAppleTransaction } from "./apple-transactions";
import { configOf } from "./config";
import { addFault } from "./faults";

/**
 * The App Store half of the emulator's own API, mounted at /_emulator/apple. Not part of any store. Bodies are
 * parsed with zod (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /transactions        {bundleId, productId, type?, environment?, expiresInSeconds?, revoked?, appAccountToken?,
 *                              quantity?, renewalOf?, account?}
 *                             → 201 {transactionId, originalTransactionId, ..., signedTransaction, receipt}
 *   GET  /transactions/:id    what the emulator holds
 *   POST /transactions/:id    {revoked?, expiresInSeconds?, appAccountToken?}: refund, revoke or expire it later
 *   POST /errors              {match, errorCode? | receiptStatus?, isRetryable?, retryAfterSeconds?, times?}
 */
export const appleAdmin = new Hono();

appleAdmin.post("/transactions", async (c) => {
	const body = await parseAdminBody(c, CreateAppleTransaction);
	if (!body.ok) return body.response;
	const created = createAppleTransaction(body.value);
	if ("refused" in created) return refuse(c, "renewalOf", created.refused);
	const config = configOf(c).apple;
	const app = config.apps.find((a) => a.bundleId === created.bundleId);
	return c.json(
		{
			...created,
			// What StoreKit 2 hands the app (Transaction.jwsRepresentation) and what StoreKit 1 would (the app receipt).
			signedTransaction: await signTransaction(config, created),
			receipt: issueReceipt(created, app?.appAppleId),
		},
		201,
	);
});

appleAdmin.get("/transactions/:id", (c) => {
	const transaction = appleTransactions.get(c.req.param("id"));
	return transaction ? c.json(transaction) : c.json({ error: "no such transaction" }, 404);
});

appleAdmin.post("/transactions/:id", async (c) => {
	const transaction = appleTransactions.get(c.req.param("id"));
	if (!transaction) return c.json({ error: "no such transaction" }, 404);
	const body = await parseAdminBody(c, UpdateAppleTransaction);
	if (!body.ok) return body.response;
	const patch = body.value;
	if (patch.expiresInSeconds !== undefined && transaction.expiresDate === null) return refuse(c, "expiresInSeconds", "only auto-renewable subscriptions expire");
	applyRevocation(transaction, patch.revoked);
	if (patch.expiresInSeconds !== undefined) transaction.expiresDate = Date.now() + patch.expiresInSeconds * 1000;
	if (patch.appAccountToken !== undefined) transaction.appAccountToken = patch.appAccountToken;
	return c.json(transaction);
});

const CODE = "must be one of Apple's seven-digit codes, e.g. 4290000";

/** Apple's coded errors (App Store Server API, e.g. 4290000, 5000001) or a verifyReceipt status, for the next matching calls. */
const AppleErrorBody = z
	.object({
		match: nonEmptyString,
		errorCode: z.number({ error: CODE }).int({ error: CODE }).min(4_000_000, { error: CODE }).max(5_999_999, { error: CODE }).optional(),
		receiptStatus: z.number({ error: "must be a verifyReceipt status, e.g. 21005" }).int().optional(),
		isRetryable: z.boolean().optional(),
		/** Sent as Retry-After, the way Apple writes it: a UNIX time in milliseconds. */
		retryAfterSeconds: z.number().nonnegative().optional(),
		times,
	})
	.refine((body) => (body.errorCode === undefined) !== (body.receiptStatus === undefined), {
		path: ["errorCode"],
		error: "send exactly one of errorCode (App Store Server API) or receiptStatus (verifyReceipt)",
	});

appleAdmin.post("/errors", async (c) => {
	const body = await parseAdminBody(c, AppleErrorBody);
	if (!body.ok) return body.response;
	const { match, errorCode, receiptStatus, isRetryable, retryAfterSeconds } = body.value;
	addFault(
		match,
		errorCode !== undefined
			? { kind: "apple_error", errorCode, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }
			: { kind: "receipt_status", status: receiptStatus!, ...(isRetryable === undefined ? {} : { isRetryable }) },
		body.value.times,
	);
	return c.json({ ok: true }, 201);
});
