/**
 * Google Play Real-time Developer Notifications (https://developer.android.com/google/play/billing/rtdn-reference)
 * as Pub/Sub pushes them (https://cloud.google.com/pubsub/docs/push): an envelope whose message.data is the
 * base64 DeveloperNotification JSON. A notification only says that something changed; what changed is always
 * asked of the Play Developer API (src/lifecycle/google.ts).
 */
import * as z from "zod";
import { InvalidNotification } from "../answers";

export const PushEnvelope = z.looseObject({
	message: z.looseObject({
		data: z.string().max(64 * 1024).optional(),
		messageId: z.string().min(1).max(128).optional(),
		message_id: z.string().min(1).max(128).optional(),
		publishTime: z.string().optional(),
		publish_time: z.string().optional(),
	}),
	subscription: z.string().optional(),
});

const millisString = z.union([z.string().regex(/^\d+$/), z.number().int()]).transform(Number);

/** subscriptionNotification.notificationType (RTDN reference). */
export const SUBSCRIPTION_NOTIFICATION_TYPES: Readonly<Record<number, string>> = {
	1: "SUBSCRIPTION_RECOVERED",
	2: "SUBSCRIPTION_RENEWED",
	3: "SUBSCRIPTION_CANCELED",
	4: "SUBSCRIPTION_PURCHASED",
	5: "SUBSCRIPTION_ON_HOLD",
	6: "SUBSCRIPTION_IN_GRACE_PERIOD",
	7: "SUBSCRIPTION_RESTARTED",
	8: "SUBSCRIPTION_PRICE_CHANGE_CONFIRMED",
	9: "SUBSCRIPTION_DEFERRED",
	10: "SUBSCRIPTION_PAUSED",
	11: "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
	12: "SUBSCRIPTION_REVOKED",
	13: "SUBSCRIPTION_EXPIRED",
	17: "SUBSCRIPTION_ITEMS_CHANGED",
	18: "SUBSCRIPTION_CANCELLATION_SCHEDULED",
	19: "SUBSCRIPTION_PRICE_CHANGE_UPDATED",
	20: "SUBSCRIPTION_PENDING_PURCHASE_CANCELED",
	22: "SUBSCRIPTION_PRICE_STEP_UP_CONSENT_UPDATED",
};

/** oneTimeProductNotification.notificationType. */
export const ONE_TIME_NOTIFICATION_TYPES: Readonly<Record<number, string>> = {
	1: "ONE_TIME_PRODUCT_PURCHASED",
	2: "ONE_TIME_PRODUCT_CANCELED",
};

const DeveloperNotification = z.looseObject({
	version: z.string().optional(),
	packageName: z.string().min(1),
	eventTimeMillis: millisString,
	subscriptionNotification: z.looseObject({ notificationType: z.number().int(), purchaseToken: z.string().min(1).max(1024), subscriptionId: z.string().optional() }).optional(),
	oneTimeProductNotification: z.looseObject({ notificationType: z.number().int(), purchaseToken: z.string().min(1).max(1024), sku: z.string().min(1) }).optional(),
	voidedPurchaseNotification: z
		.looseObject({
			purchaseToken: z.string().min(1).max(1024),
			orderId: z.string().optional(),
			/** 1 subscription, 2 one-time product */
			productType: z.number().int(),
			/** 1 full refund, 2 quantity-based partial refund */
			refundType: z.number().int().optional(),
		})
		.optional(),
	testNotification: z.looseObject({ version: z.string().optional() }).optional(),
});

export type GoogleNotificationEvent =
	| { kind: "subscription"; type: string; token: string }
	| { kind: "one_time"; type: string; token: string; productId: string }
	| { kind: "voided"; token: string; orderId: string | null; productType: "subscription" | "product"; fullRefund: boolean }
	| { kind: "test" }
	| { kind: "unknown" };

export interface GoogleNotification {
	/** Pub/Sub's messageId: the same on every redelivery. */
	id: string;
	packageName: string;
	eventTime: number;
	event: GoogleNotificationEvent;
	decoded: Record<string, unknown>;
}

export function parsePush(body: unknown): GoogleNotification {
	const envelope = PushEnvelope.safeParse(body);
	if (!envelope.success) throw new InvalidNotification("invalid", "the body is not a Pub/Sub push (message)");
	const { message } = envelope.data;
	const id = message.messageId ?? message.message_id;
	if (id === undefined || message.data === undefined) throw new InvalidNotification("invalid", "the Pub/Sub message has no messageId or no data");
	let json: unknown;
	try {
		// Standard base64 (Pub/Sub's encoding), tolerating the URL-safe alphabet.
		json = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(message.data.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
	} catch {
		throw new InvalidNotification("invalid", "the Pub/Sub message's data is not base64 JSON");
	}
	const parsed = DeveloperNotification.safeParse(json);
	if (!parsed.success) throw new InvalidNotification("invalid", `the message is not a DeveloperNotification (${parsed.error.issues[0]?.path.join(".") || "root"})`);
	const n = parsed.data;
	let event: GoogleNotificationEvent;
	if (n.subscriptionNotification) {
		const s = n.subscriptionNotification;
		event = { kind: "subscription", type: SUBSCRIPTION_NOTIFICATION_TYPES[s.notificationType] ?? `SUBSCRIPTION_${s.notificationType}`, token: s.purchaseToken };
	} else if (n.oneTimeProductNotification) {
		const o = n.oneTimeProductNotification;
		event = { kind: "one_time", type: ONE_TIME_NOTIFICATION_TYPES[o.notificationType] ?? `ONE_TIME_${o.notificationType}`, token: o.purchaseToken, productId: o.sku };
	} else if (n.voidedPurchaseNotification) {
		const v = n.voidedPurchaseNotification;
		event = { kind: "voided", token: v.purchaseToken, orderId: v.orderId ?? null, productType: v.productType === 1 ? "subscription" : "product", fullRefund: v.refundType !== 2 };
	} else if (n.testNotification) {
		event = { kind: "test" };
	} else {
		event = { kind: "unknown" };
	}
	return { id, packageName: n.packageName, eventTime: n.eventTimeMillis, event, decoded: { ...envelope.data, message: { ...message, data: n } } };
}
