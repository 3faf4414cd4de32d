import { Hono, type Context } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, refuse } from "./admin-body";
import { applyAmazonUpdate, purchaseEvent, replaceReceipt, type AmazonEvent } from "./amazon-changes";
import { notifyAmazon } from "./amazon-notifications";
import { amazonReceipts, clientUserData, CreateAmazonReceipt, createAmazonReceipt, rvsResource, UpdateAmazonReceipt, type AmazonReceipt } from "./amazon-receipts";
import { resubscribe } from "./amazon-sns";
import { configOf } from "./config";

/**
 * The Amazon Appstore half of the emulator's own API, mounted at /_emulator/amazon. Not part of any store. Bodies are
 * parsed with zod (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /receipts               {packageName, productId, type?, userId?, sandbox?, test?, beta?, expiresInSeconds?,
 *                                autoRenew?, termSku?, quantity?, replaces?, notify?}: a purchase; answers its receiptId,
 *                                the Amazon userId and localVerificationData (the UserData JSON the app forwards)
 *   GET  /receipts/:receiptId    what the emulator holds, as RVS answers it, with userId and whether it is gone
 *   POST /receipts/:receiptId    {cancel? | refund? | autoRenew? | renew?, expiresInSeconds? | gracePeriod? | expire? |
 *                                gone?, notify?}: a change (amazon-changes.ts) and its Real-time Notification
 *   POST /notifications          {receiptId, notificationType, signatureVersion?, notify?}: any RTN about a receipt
 *   POST /sns/resubscribe        the endpoint is subscribed anew: a new SubscriptionConfirmation comes first
 * Notifications are sent for changes unless `"notify": false`, which records them without sending; a creation makes
 * one only when `notify` is given.
 */
export const amazonAdmin = new Hono();

async function send(c: Context, events: AmazonEvent[], notify: boolean) {
	const sent = [];
	for (const event of events) {
		const { messageId, type, held } = await notifyAmazon(c, event, notify);
		sent.push({ messageId, type, sent: notify, held });
	}
	return sent;
}

function shown(r: AmazonReceipt) {
	return { ...rvsResource(r), userId: r.userId, packageName: r.packageName, sandbox: r.sandbox, gone: r.gone };
}

amazonAdmin.post("/receipts", async (c) => {
	const body = await parseAdminBody(c, CreateAmazonReceipt);
	if (!body.ok) return body.response;
	const input = body.value;
	if (!configOf(c).amazon.apps.some((a) => a.packageName === input.packageName)) {
		return refuse(c, "packageName", `no Amazon app ${input.packageName} in EMULATOR_CONFIG.amazon.apps`);
	}
	let replaced: AmazonReceipt | undefined;
	if (input.replaces !== undefined) {
		replaced = amazonReceipts.get(input.replaces);
		if (!replaced || replaced.packageName !== input.packageName || replaced.productType !== "SUBSCRIPTION") return refuse(c, "replaces", `no subscription receipt ${input.replaces} of package ${input.packageName}`);
		if (replaced.cancelDate !== null && replaced.cancelDate <= Date.now()) return refuse(c, "replaces", "that subscription has ended: a plan change replaces a running one");
		if (input.userId !== undefined && input.userId !== replaced.userId) return refuse(c, "userId", "a plan change is the same customer's");
		if (input.sandbox !== replaced.sandbox) return refuse(c, "sandbox", "a plan change stays in its environment");
	}
	const receipt = createAmazonReceipt({ ...input, ...(replaced ? { userId: replaced.userId } : {}) });
	const events = replaced ? [replaceReceipt(replaced, receipt)] : [purchaseEvent(receipt)];
	// Only when asked: true sends it, false records it alone. A plan change is always told (Amazon's is how the link is known).
	const notifications = input.notify === undefined && !replaced ? [] : await send(c, events, input.notify !== false);
	return c.json({ ...shown(receipt), localVerificationData: clientUserData(receipt), notifications }, 201);
});

amazonAdmin.get("/receipts/:receiptId", (c) => {
	const receipt = amazonReceipts.get(c.req.param("receiptId"));
	return receipt ? c.json(shown(receipt)) : c.json({ error: "no such receipt" }, 404);
});

amazonAdmin.post("/receipts/:receiptId", async (c) => {
	const receipt = amazonReceipts.get(c.req.param("receiptId"));
	if (!receipt) return c.json({ error: "no such receipt" }, 404);
	const body = await parseAdminBody(c, UpdateAmazonReceipt);
	if (!body.ok) return body.response;
	const updated = applyAmazonUpdate(receipt, body.value);
	if ("refused" in updated) return refuse(c, updated.refused.field, updated.refused.message);
	return c.json({ ...shown(receipt), notifications: await send(c, updated.events, body.value.notify !== false) });
});

/** POST /_emulator/amazon/notifications: any Real-time Notification about a receipt as it stands now. */
const AmazonNotificationBody = z.object({
	receiptId: nonEmptyString,
	notificationType: z.string({ error: "must be an RTN type, e.g. SUBSCRIPTION_RENEWED" }).regex(/^[A-Z_]{1,64}$/, { error: "must be an RTN type, e.g. SUBSCRIPTION_RENEWED" }),
	signatureVersion: z.enum(["1", "2"], { error: 'must be "1" or "2"' }).optional(),
	notify: z.boolean().optional(),
});

amazonAdmin.post("/notifications", async (c) => {
	const body = await parseAdminBody(c, AmazonNotificationBody);
	if (!body.ok) return body.response;
	const receipt = amazonReceipts.get(body.value.receiptId);
	if (!receipt) return refuse(c, "receiptId", `no receipt ${body.value.receiptId}`);
	const sent = await notifyAmazon(c, { receipt, notificationType: body.value.notificationType }, body.value.notify !== false, body.value.signatureVersion);
	return c.json(sent, 201);
});

amazonAdmin.post("/sns/resubscribe", async (c) => c.json({ confirmationMessageId: await resubscribe(c) }, 201));
