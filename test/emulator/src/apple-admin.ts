import { Hono, type Context } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, refuse, times } from "./admin-body";
import { applyAppleUpdate, creationChange } from "./apple-changes";
import { APPLE_NOTIFICATION_SUBTYPES, APPLE_NOTIFICATION_TYPES, CONSUMPTION_REQUEST_REASONS, notifyAboutTransaction, notifyTest, type AppleNotificationKind } from "./apple-notifications";
import { issueReceipt } from "./apple-receipts";
import { appleTransactions, CreateAppleTransaction, createAppleTransaction, signTransaction, UpdateAppleTransaction, type AppleTransactionRecord } from "./apple-transactions";
import { configOf } from "./config";
import { addFault } from "./faults";

/**
 * The App Store half of the emulator's own API, mounted at /_emulator/apple. Not part of any store. Bodies are
 * parsed with zod (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /transactions        {bundleId, productId, type?, environment?, expiresInSeconds?, revoked?, appAccountToken?,
 *                              quantity?, renewalOf?, upgrade?, account?, autoRenew?, notify?}
 *                             → 201 {transactionId, originalTransactionId, ..., signedTransaction, receipt, notifications}
 *   GET  /transactions/:id    what the emulator holds
 *   POST /transactions/:id    {revoked?, expiresInSeconds?, appAccountToken?, autoRenew?, billingRetry?, notify?}: refund,
 *                             revoke, expire or change its renewal later (apple-changes.ts) → the transaction, notifications
 *   POST /notifications       {transactionId | bundleId, notificationType, subtype?, environment?, consumptionRequestReason?,
 *                              notify?} → 201 {notificationUUID, signedPayload, payload}: any V2 notification, now
 *   POST /errors              {match, errorCode? | receiptStatus?, isRetryable?, retryAfterSeconds?, times?}
 * Notifications (apple-notifications.ts) are sent for changes unless `"notify": false`, which records them without
 * sending; a creation makes one only when `notify` is given (true: sent; false: recorded). Xcode transactions have
 * none (no server knows them). Every one is kept for Get Notification History.
 */
export const appleAdmin = new Hono();

appleAdmin.post("/transactions", async (c) => {
	const body = await parseAdminBody(c, CreateAppleTransaction);
	if (!body.ok) return body.response;
	const change = creationChange(body.value);
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
			// Only when asked: true sends it, false records it for the history alone.
			notifications: await notify(c, created, body.value.notify === undefined ? [] : [change], body.value.notify),
		},
		201,
	);
});

/** Sends (or, with `"notify": false`, only records) one notification per change; none for Xcode transactions. */
async function notify(c: Context, t: AppleTransactionRecord, changes: AppleNotificationKind[], send = true) {
	if (t.environment === "Xcode") return [];
	const sent = [];
	for (const change of changes) {
		const { notificationUUID } = await notifyAboutTransaction(c, t, change, { send });
		sent.push({ notificationUUID, notificationType: change.type, ...(change.subtype ? { subtype: change.subtype } : {}), sent: send });
	}
	return sent;
}

appleAdmin.get("/transactions/:id", (c) => {
	const transaction = appleTransactions.get(c.req.param("id"));
	return transaction ? c.json(transaction) : c.json({ error: "no such transaction" }, 404);
});

appleAdmin.post("/transactions/:id", async (c) => {
	const transaction = appleTransactions.get(c.req.param("id"));
	if (!transaction) return c.json({ error: "no such transaction" }, 404);
	const body = await parseAdminBody(c, UpdateAppleTransaction);
	if (!body.ok) return body.response;
	const updated = applyAppleUpdate(transaction, body.value);
	if ("refused" in updated) return refuse(c, updated.refused.field, updated.refused.message);
	return c.json({ ...transaction, notifications: await notify(c, transaction, updated.changes, body.value.notify !== false) });
});

const oneOf = (values: readonly string[]) => ({ error: `must be one of ${values.join(", ")}` });

/** POST /_emulator/apple/notifications: any V2 notification about a transaction as it stands now, or a TEST about an app. */
const AppleNotificationBody = z
	.object({
		transactionId: nonEmptyString.optional(),
		/** TEST only, instead of a transaction. */
		bundleId: nonEmptyString.optional(),
		environment: z.enum(["Production", "Sandbox"], oneOf(["Production", "Sandbox"])).optional(),
		notificationType: z.enum(APPLE_NOTIFICATION_TYPES, oneOf(APPLE_NOTIFICATION_TYPES)),
		subtype: z.enum(APPLE_NOTIFICATION_SUBTYPES, oneOf(APPLE_NOTIFICATION_SUBTYPES)).optional(),
		consumptionRequestReason: z.enum(CONSUMPTION_REQUEST_REASONS, oneOf(CONSUMPTION_REQUEST_REASONS)).optional(),
		notify: z.boolean().optional(),
	})
	.refine((b) => b.transactionId !== undefined || (b.notificationType === "TEST" && b.bundleId !== undefined), {
		path: ["transactionId"],
		error: "must name the transaction (a TEST notification may name bundleId instead)",
	});

appleAdmin.post("/notifications", async (c) => {
	const body = await parseAdminBody(c, AppleNotificationBody);
	if (!body.ok) return body.response;
	const { transactionId, notificationType, subtype, consumptionRequestReason } = body.value;
	const send = body.value.notify !== false;
	const transaction = transactionId === undefined ? undefined : appleTransactions.get(transactionId);
	if (transactionId !== undefined && !transaction) return refuse(c, "transactionId", `no transaction ${transactionId}`);
	if (transaction?.environment === "Xcode") return refuse(c, "transactionId", "Xcode transactions exist only on the device: no server sends notifications about them");
	if (notificationType === "TEST") {
		const bundleId = transaction?.bundleId ?? body.value.bundleId!;
		const environment = (transaction?.environment as "Production" | "Sandbox" | undefined) ?? body.value.environment ?? "Production";
		return c.json(await notifyTest(c, bundleId, environment, send), 201);
	}
	return c.json(await notifyAboutTransaction(c, transaction!, { type: notificationType, subtype }, { send, consumptionRequestReason }), 201);
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
