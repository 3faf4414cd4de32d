import { Hono } from "hono";
import { issueReceipt } from "./apple-receipts";
import { applyRevocation, appleTransactions, createAppleTransaction, signTransaction, type CreateAppleTransaction } from "./apple-transactions";
import { configOf } from "./config";
import { addFault } from "./faults";

/**
 * The App Store half of the emulator's own API, mounted at /_emulator/apple. Not part of any store.
 *   POST /transactions        {bundleId, productId, type?, environment?, expiresInSeconds?, revoked?, appAccountToken?,
 *                              quantity?, renewalOf?, account?}
 *                             → 201 {transactionId, originalTransactionId, ..., signedTransaction, receipt}
 *   GET  /transactions/:id    what the emulator holds
 *   POST /transactions/:id    {revoked?, expiresInSeconds?, appAccountToken?}: refund, revoke or expire it later
 *   POST /errors              {match, errorCode? | receiptStatus?, isRetryable?, retryAfterSeconds?, times?}
 */
export const appleAdmin = new Hono();

const REVOCATIONS = [true, false, "REFUND_FULL", "REFUND_PRORATED", "FAMILY_REVOKE"];

appleAdmin.post("/transactions", async (c) => {
	const body = (await c.req.json().catch(() => null)) as CreateAppleTransaction | null;
	if (!body || typeof body.productId !== "string" || (typeof body.bundleId !== "string" && body.renewalOf === undefined)) {
		return c.json({ error: "bundleId (or renewalOf) and productId are required" }, 400);
	}
	if (body.revoked !== undefined && !REVOCATIONS.includes(body.revoked)) return c.json({ error: `revoked must be one of ${REVOCATIONS.join(", ")}` }, 400);
	const created = createAppleTransaction(body);
	if (typeof created === "string") return c.json({ error: created }, 400);
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
	const patch = (await c.req.json().catch(() => ({}))) as Partial<{ revoked: CreateAppleTransaction["revoked"]; expiresInSeconds: number; appAccountToken: string | null }>;
	if (patch.revoked !== undefined && !REVOCATIONS.includes(patch.revoked)) return c.json({ error: `revoked must be one of ${REVOCATIONS.join(", ")}` }, 400);
	applyRevocation(transaction, patch.revoked);
	if (patch.expiresInSeconds !== undefined) {
		if (transaction.expiresDate === null) return c.json({ error: "only auto-renewable subscriptions expire" }, 400);
		transaction.expiresDate = Date.now() + patch.expiresInSeconds * 1000;
	}
	if (patch.appAccountToken !== undefined) transaction.appAccountToken = patch.appAccountToken;
	return c.json(transaction);
});

appleAdmin.post("/errors", async (c) => {
	const body = (await c.req.json().catch(() => null)) as {
		match?: string;
		errorCode?: number;
		receiptStatus?: number;
		isRetryable?: boolean;
		retryAfterSeconds?: number;
		times?: number;
	} | null;
	const one = (body?.errorCode === undefined) !== (body?.receiptStatus === undefined);
	if (!body?.match || !one) return c.json({ error: "match and one of errorCode (App Store Server API) or receiptStatus (verifyReceipt) are required" }, 400);
	if (body.errorCode !== undefined && !(Number.isInteger(body.errorCode) && body.errorCode >= 4000000 && body.errorCode < 6000000)) {
		return c.json({ error: "errorCode must be one of Apple's seven-digit codes, e.g. 4290000" }, 400);
	}
	const { errorCode, receiptStatus, isRetryable, retryAfterSeconds } = body;
	addFault(
		body.match,
		errorCode !== undefined
			? { kind: "apple_error", errorCode, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }
			: { kind: "receipt_status", status: receiptStatus!, ...(isRetryable === undefined ? {} : { isRetryable }) },
		body.times ?? 1,
	);
	return c.json({ ok: true }, 201);
});
