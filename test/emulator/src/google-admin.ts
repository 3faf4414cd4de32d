import { Hono, type Context } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, refuse } from "./admin-body";
import { expireAllTokens } from "./google-auth";
import { applyGoogleUpdate, creationEvent } from "./google-changes";
import { notifyGoogle, ONE_TIME_NOTIFICATION_TYPES, SUBSCRIPTION_NOTIFICATION_TYPES, type GoogleEvent } from "./google-notifications";
import { clientPurchaseJson, CreateGooglePurchase, createGooglePurchase, googlePurchases, UpdateGooglePurchase } from "./google-purchases";

/**
 * The Google Play half of the emulator's own API, mounted at /_emulator/google. Not part of any store. Bodies are
 * parsed with zod (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /purchases          {packageName, productId, type?, state?, ..., linkedPurchaseToken?, notify?}: create a
 *                            purchase; answers its token, the app-side JSON and the notifications sent
 *   GET  /purchases/:token   what the emulator holds (acknowledged, consumed, voided, ...)
 *   POST /purchases/:token   {state?, expiresInSeconds?, acknowledged?, refund?, voidedSource?, voidedReason?, notify?}:
 *                            change it later (google-changes.ts); answers the purchase and the notifications sent
 *   POST /notifications      {kind, purchaseToken?, packageName?, notificationType?, refundType?, notify?}: any RTDN
 *   POST /expire-tokens      every access token issued so far expires now
 * RTDNs (google-notifications.ts) are sent for changes unless `"notify": false`, which records them without sending;
 * a creation makes one only when `notify` is given (true: sent; false: recorded).
 */
export const googleAdmin = new Hono();

function send(c: Context, events: GoogleEvent[], notify: boolean) {
	return events.map((event) => {
		const { messageId, type } = notifyGoogle(c, event, notify);
		return { messageId, type, sent: notify };
	});
}

googleAdmin.post("/purchases", async (c) => {
	const body = await parseAdminBody(c, CreateGooglePurchase);
	if (!body.ok) return body.response;
	const linked = body.value.linkedPurchaseToken;
	if (linked !== undefined) {
		const earlier = googlePurchases.get(linked);
		if (!earlier || earlier.packageName !== body.value.packageName) return refuse(c, "linkedPurchaseToken", `no purchase ${linked} of package ${body.value.packageName}`);
		if (earlier.type !== "subscription") return refuse(c, "linkedPurchaseToken", "must name a subscription");
	}
	const created = createGooglePurchase(body.value);
	return c.json(
		{
			purchaseToken: created.token,
			orderId: created.orderId,
			packageName: created.packageName,
			productId: created.productId,
			type: created.type,
			state: created.state,
			purchaseTime: created.purchaseTime,
			expiryTime: created.expiryTime,
			linkedPurchaseToken: created.linkedPurchaseToken,
			localVerificationData: clientPurchaseJson(created),
			// Only when asked: true sends it, false records it alone.
			notifications: body.value.notify === undefined ? [] : send(c, [creationEvent(created)], body.value.notify),
		},
		201,
	);
});

googleAdmin.get("/purchases/:token", (c) => {
	const purchase = googlePurchases.get(c.req.param("token"));
	return purchase ? c.json(purchase) : c.json({ error: "no such purchase" }, 404);
});

googleAdmin.post("/purchases/:token", async (c) => {
	const purchase = googlePurchases.get(c.req.param("token"));
	if (!purchase) return c.json({ error: "no such purchase" }, 404);
	const body = await parseAdminBody(c, UpdateGooglePurchase);
	if (!body.ok) return body.response;
	const updated = applyGoogleUpdate(purchase, body.value);
	if ("refused" in updated) return refuse(c, updated.refused.field, updated.refused.message);
	return c.json({ ...purchase, notifications: send(c, updated.events, body.value.notify !== false) });
});

const KINDS = ["subscription", "one_time", "voided", "test"] as const;

/** POST /_emulator/google/notifications: any RTDN about a purchase as it stands now, or a test notification. */
const GoogleNotificationBody = z.object({
	kind: z.enum(KINDS, { error: `must be one of ${KINDS.join(", ")}` }),
	purchaseToken: nonEmptyString.optional(),
	/** kind "test": the package, when no purchase names it. */
	packageName: nonEmptyString.optional(),
	/** subscription: SubscriptionNotification's type (default 4, purchased); one_time: 1 purchased (default) or 2 canceled. */
	notificationType: z.number({ error: "must be a notification type number" }).int({ error: "must be a notification type number" }).optional(),
	/** voided: 1 full refund (default), 2 quantity-based partial refund. */
	refundType: z.union([z.literal(1), z.literal(2)], { error: "must be 1 (full) or 2 (quantity-based partial)" }).optional(),
	notify: z.boolean().optional(),
});

googleAdmin.post("/notifications", async (c) => {
	const body = await parseAdminBody(c, GoogleNotificationBody);
	if (!body.ok) return body.response;
	const { kind, purchaseToken, notificationType } = body.value;
	const purchase = purchaseToken === undefined ? undefined : googlePurchases.get(purchaseToken);
	if (purchaseToken !== undefined && !purchase) return refuse(c, "purchaseToken", `no purchase ${purchaseToken}`);
	let event: GoogleEvent;
	if (kind === "test") {
		const packageName = purchase?.packageName ?? body.value.packageName;
		if (packageName === undefined) return refuse(c, "packageName", "must name the package (or send purchaseToken)");
		event = { kind, packageName };
	} else {
		if (!purchase) return refuse(c, "purchaseToken", "must name the purchase the notification is about");
		if (kind === "voided") {
			event = { kind, purchase, refundType: body.value.refundType ?? 1 };
		} else {
			const subscription = kind === "subscription";
			if (purchase.type !== (subscription ? "subscription" : "product")) return refuse(c, "kind", `the purchase is a ${purchase.type}`);
			const types = subscription ? SUBSCRIPTION_NOTIFICATION_TYPES : ONE_TIME_NOTIFICATION_TYPES;
			const type = notificationType ?? (subscription ? 4 : 1);
			if (!(type in types)) return refuse(c, "notificationType", `must be one of ${Object.keys(types).join(", ")} for ${kind}`);
			event = { kind, purchase, notificationType: type };
		}
	}
	const { messageId, body: pushed, notification } = notifyGoogle(c, event, body.value.notify !== false);
	return c.json({ messageId, body: pushed, notification }, 201);
});

googleAdmin.post("/expire-tokens", (c) => c.json({ expired: expireAllTokens() }));
