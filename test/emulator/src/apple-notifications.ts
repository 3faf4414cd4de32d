import type { Context } from "hono";
import { renewalInfoPayload, signApple, signTransaction, subscriptionChain, subscriptionStatus, type AppleTransactionRecord } from "./apple-transactions";
import { configOf } from "./config";
import { addNotification } from "./notifications";

/**
 * App Store Server Notifications V2 (https://developer.apple.com/documentation/appstoreservernotifications): a
 * ResponseBodyV2DecodedPayload signed by the test PKI exactly as signed transactions are (header { alg, x5c }) and
 * POSTed as {"signedPayload": "<JWS>"}. Its data carries the transaction as it stands now, signed again, and for an
 * auto-renewable subscription the renewal info and status of the subscription. Each has a fresh notificationUUID;
 * a retry of it carries the same one (notifications.ts).
 */

/** notificationType (https://developer.apple.com/documentation/appstoreservernotifications/notificationtype). */
export const APPLE_NOTIFICATION_TYPES = [
	"SUBSCRIBED",
	"DID_CHANGE_RENEWAL_PREF",
	"DID_CHANGE_RENEWAL_STATUS",
	"OFFER_REDEEMED",
	"DID_RENEW",
	"EXPIRED",
	"DID_FAIL_TO_RENEW",
	"GRACE_PERIOD_EXPIRED",
	"PRICE_INCREASE",
	"REFUND",
	"REFUND_DECLINED",
	"CONSUMPTION_REQUEST",
	"RENEWAL_EXTENDED",
	"REVOKE",
	"TEST",
	"RENEWAL_EXTENSION",
	"REFUND_REVERSED",
	"EXTERNAL_PURCHASE_TOKEN",
	"ONE_TIME_CHARGE",
	"RESCIND_CONSENT",
	"METADATA_UPDATE",
	"MIGRATION",
	"PRICE_CHANGE",
] as const;

/** subtype (https://developer.apple.com/documentation/appstoreservernotifications/subtype). */
export const APPLE_NOTIFICATION_SUBTYPES = [
	"INITIAL_BUY",
	"RESUBSCRIBE",
	"DOWNGRADE",
	"UPGRADE",
	"AUTO_RENEW_ENABLED",
	"AUTO_RENEW_DISABLED",
	"VOLUNTARY",
	"BILLING_RETRY",
	"PRICE_INCREASE",
	"GRACE_PERIOD",
	"PENDING",
	"ACCEPTED",
	"BILLING_RECOVERY",
	"PRODUCT_NOT_FOR_SALE",
	"SUMMARY",
	"FAILURE",
	"UNREPORTED",
] as const;

/** consumptionRequestReason (https://developer.apple.com/documentation/appstoreservernotifications/consumptionrequestreason). */
export const CONSUMPTION_REQUEST_REASONS = ["UNINTENDED_PURCHASE", "FULFILLMENT_ISSUE", "UNSATISFIED_WITH_PURCHASE", "LEGAL", "OTHER"] as const;

export interface AppleNotificationKind {
	type: string;
	subtype?: string | undefined;
}

export interface SentAppleNotification {
	notificationUUID: string;
	signedPayload: string;
	payload: Record<string, unknown>;
}

interface Options {
	/** false: recorded for the history, never sent. */
	send: boolean;
	consumptionRequestReason?: string | undefined;
}

/** The notification's app: Production payloads name the app's Apple ID as well as its bundle. */
function appData(c: Context, bundleId: string, environment: string): Record<string, unknown> {
	const app = configOf(c).apple.apps.find((a) => a.bundleId === bundleId);
	return { ...(environment === "Production" && app ? { appAppleId: app.appAppleId } : {}), bundleId, bundleVersion: "1", environment };
}

/** A notification about one transaction, as it stands now; recorded, and sent unless `send` is false. */
export async function notifyAboutTransaction(c: Context, t: AppleTransactionRecord, kind: AppleNotificationKind, options: Options): Promise<SentAppleNotification> {
	const config = configOf(c).apple;
	const now = Date.now();
	let subscription: Record<string, unknown> = {};
	if (t.type === "Auto-Renewable Subscription") {
		// The renewal info and status are the subscription's: those of its latest transaction.
		const latest = subscriptionChain(t.originalTransactionId).at(-1) ?? t;
		subscription = { signedRenewalInfo: await signApple(config, renewalInfoPayload(latest, now)), status: subscriptionStatus(latest, now) };
	}
	const data = {
		...appData(c, t.bundleId, t.environment),
		signedTransactionInfo: await signTransaction(config, t),
		...subscription,
		...(kind.type === "CONSUMPTION_REQUEST" ? { consumptionRequestReason: options.consumptionRequestReason ?? "UNINTENDED_PURCHASE" } : {}),
	};
	return record(c, kind, data, { environment: t.environment, bundleId: t.bundleId, account: t.account }, t.transactionId, options.send, now);
}

/** TEST (Request a Test Notification): about the app, with no transaction. */
export function notifyTest(c: Context, bundleId: string, environment: "Production" | "Sandbox", send: boolean): Promise<SentAppleNotification> {
	return record(c, { type: "TEST" }, appData(c, bundleId, environment), { environment, bundleId }, null, send, Date.now());
}

async function record(
	c: Context,
	kind: AppleNotificationKind,
	data: Record<string, unknown>,
	scope: { environment: string; bundleId: string; account?: string },
	transactionId: string | null,
	send: boolean,
	now: number,
): Promise<SentAppleNotification> {
	const payload = {
		notificationType: kind.type,
		...(kind.subtype ? { subtype: kind.subtype } : {}),
		notificationUUID: crypto.randomUUID(),
		data,
		version: "2.0",
		signedDate: now,
	};
	const signedPayload = await signApple(configOf(c).apple, payload);
	addNotification(
		c,
		{
			id: payload.notificationUUID,
			store: "app_store",
			type: kind.type,
			subtype: kind.subtype ?? null,
			transactionId,
			scope,
			signedPayload,
			body: JSON.stringify({ signedPayload }),
			headers: async () => ({ "content-type": "application/json" }),
			sent: send,
		},
		now,
	);
	return { notificationUUID: payload.notificationUUID, signedPayload, payload };
}
