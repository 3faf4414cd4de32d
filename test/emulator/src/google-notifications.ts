import type { Context } from "hono";
import { configOf } from "./config";
import { pushHeaders } from "./google-oidc";
import type { GooglePurchase } from "./google-purchases";
import { addNotification } from "./notifications";

/**
 * Google Play's Real-time Developer Notifications (https://developer.android.com/google/play/billing/rtdn-reference):
 * a DeveloperNotification, base64 in the data of a Pub/Sub message, pushed as Pub/Sub pushes
 * (https://cloud.google.com/pubsub/docs/push): {"message": {attributes, data, messageId, message_id, publishTime,
 * publish_time}, "subscription": "projects/.../subscriptions/..."}, with an OIDC token (google-oidc.ts). A
 * redelivery is the same message (same messageId and body) with a fresh token.
 */

/** subscriptionNotification.notificationType */
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

/** oneTimeProductNotification.notificationType */
export const ONE_TIME_NOTIFICATION_TYPES: Readonly<Record<number, string>> = {
	1: "ONE_TIME_PRODUCT_PURCHASED",
	2: "ONE_TIME_PRODUCT_CANCELED",
};

/** What an RTDN is about. */
export type GoogleEvent =
	| { kind: "subscription"; purchase: GooglePurchase; notificationType: number }
	| { kind: "one_time"; purchase: GooglePurchase; notificationType: number }
	/** refundType 1: full refund; 2: quantity-based partial refund. */
	| { kind: "voided"; purchase: GooglePurchase; refundType: 1 | 2 }
	| { kind: "test"; packageName: string };

export interface SentGoogleNotification {
	messageId: string;
	/** The exact body pushed. */
	body: string;
	/** The DeveloperNotification inside it, decoded. */
	notification: Record<string, unknown>;
	type: string;
}

const SUBSCRIPTION = "projects/iap-edge-emulator/subscriptions/rtdn";
let counter = 0;

/** Pub/Sub message ids are decimal strings, unique within the topic. */
function newMessageId(now: number): string {
	counter += 1;
	return `${now}${String(counter % 1_000_000).padStart(6, "0")}`;
}

function base64(text: string): string {
	const bytes = new TextEncoder().encode(text);
	let binary = "";
	for (const b of bytes) binary += String.fromCharCode(b);
	return btoa(binary);
}

function describe(event: GoogleEvent): { type: string; body: Record<string, unknown> } {
	switch (event.kind) {
		case "subscription": {
			const { purchase, notificationType } = event;
			return {
				type: SUBSCRIPTION_NOTIFICATION_TYPES[notificationType] ?? `SUBSCRIPTION_${notificationType}`,
				body: { subscriptionNotification: { version: "1.0", notificationType, purchaseToken: purchase.token, subscriptionId: purchase.productId } },
			};
		}
		case "one_time": {
			const { purchase, notificationType } = event;
			return {
				type: ONE_TIME_NOTIFICATION_TYPES[notificationType] ?? `ONE_TIME_PRODUCT_${notificationType}`,
				body: { oneTimeProductNotification: { version: "1.0", notificationType, purchaseToken: purchase.token, sku: purchase.productId } },
			};
		}
		case "voided": {
			const { purchase, refundType } = event;
			return {
				type: "VOIDED_PURCHASE",
				body: { voidedPurchaseNotification: { purchaseToken: purchase.token, orderId: purchase.orderId, productType: purchase.type === "subscription" ? 1 : 2, refundType } },
			};
		}
		case "test":
			return { type: "TEST_NOTIFICATION", body: { testNotification: { version: "1.0" } } };
	}
}

/** An RTDN, recorded and (unless `send` is false) pushed or queued. */
export function notifyGoogle(c: Context, event: GoogleEvent, send: boolean): SentGoogleNotification {
	const now = Date.now();
	const packageName = event.kind === "test" ? event.packageName : event.purchase.packageName;
	const { type, body } = describe(event);
	const notification = { version: "1.0", packageName, eventTimeMillis: String(now), ...body };
	const messageId = newMessageId(now);
	const publishTime = new Date(now).toISOString();
	const pushed = JSON.stringify({
		message: { attributes: {}, data: base64(JSON.stringify(notification)), messageId, message_id: messageId, publishTime, publish_time: publishTime },
		subscription: SUBSCRIPTION,
	});
	const push = configOf(c).google.push;
	addNotification(
		c,
		{
			id: messageId,
			store: "google_play",
			type,
			subtype: null,
			transactionId: event.kind === "test" ? null : event.purchase.token,
			scope: { packageName },
			body: pushed,
			headers: () => pushHeaders(push),
			sent: send,
		},
		now,
	);
	return { messageId, body: pushed, notification, type };
}
