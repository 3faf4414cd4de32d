import type { Context } from "hono";
import { configOf, type NotifyConfig } from "./config";

/**
 * Every store notification the emulator made, and its deliveries. Like the stores, it records each one whether or
 * not it reaches the service: Apple's Get Notification History lists failed ones too, with their send attempts.
 * Each notification keeps its id and body for every delivery (Apple retries carry the same notificationUUID,
 * Pub/Sub redelivers the same messageId, SNS the same signed message); only Google's OIDC token is made anew each time.
 *
 * EMULATOR_CONFIG.notify.mode says who delivers:
 *   "push": the emulator POSTs it itself, in ctx.waitUntil, and on a non-2xx answer or a network error tries again
 *           after 1 s, 3 s and 10 s. The stores retry over far longer: Apple V2 notifications five more times, 1, 12,
 *           24, 48 and 72 hours apart, in Production only (Sandbox sends once); Pub/Sub with exponential backoff for
 *           up to the subscription's retention (7 days by default); Amazon SNS by its delivery policy (Amazon does
 *           not retry a 4xx). No dev session waits that long, so the schedule is shortened; what is left undelivered
 *           stays in the outbox.
 *   "hold": nothing is sent; GET /_emulator/outbox hands each undelivered one to the caller, who reports the
 *           status the service answered (POST /_emulator/outbox/:deliveryId). Tests do this.
 */

export type NotificationStore = "app_store" | "google_play" | "amazon";

export interface DeliveryAttempt {
	at: number;
	/** The receiver's HTTP status; 0 when no answer came (a network error or a timeout). */
	status: number;
}

export interface StoreNotification {
	/** Order of creation. */
	seq: number;
	/** Apple's notificationUUID, Pub/Sub's messageId. */
	id: string;
	deliveryId: string;
	store: NotificationStore;
	/** Apple's notificationType; for Google the RTDN type's name (SUBSCRIPTION_CANCELED, VOIDED_PURCHASE, ...). */
	type: string;
	subtype: string | null;
	/** Apple: the transaction id. Google: the purchase token. Amazon: the receipt id. */
	transactionId: string | null;
	createdAt: number;
	/** What the stores' lists filter by: Apple's environment, bundle and customer; Google's package. */
	scope: { environment?: string; bundleId?: string; account?: string; packageName?: string };
	/** Apple: the JWS posted as {"signedPayload": ...}. */
	signedPayload?: string;
	url: string;
	/** The exact body, the same for every delivery. */
	body: string;
	headers: () => Promise<Record<string, string>>;
	/** false: recorded but never sent (`"notify": false`), as if it had been lost on the way. */
	sent: boolean;
	/**
	 * Sent, but not to be delivered yet: Amazon SNS delivers nothing to an endpoint before it confirms its subscription
	 * (amazon-sns.ts releases these once it does).
	 */
	held?: boolean;
	deliveries: DeliveryAttempt[];
	delivered: boolean;
}

export type NewNotification = Omit<StoreNotification, "seq" | "deliveryId" | "createdAt" | "url" | "deliveries" | "delivered">;

const notifications: StoreNotification[] = [];
let sequence = 0;
/** Bounded, as the call records are: a long dev session should not grow without limit. */
const MAX_NOTIFICATIONS = 10_000;
/** Retries in push mode, after the first attempt (see above). */
const RETRY_DELAYS_MS = [1_000, 3_000, 10_000];
const PUSH_TIMEOUT_MS = 10_000;

/** Where a store's notifications go: the configured URL, else the service's path for the caller to resolve. */
export function notificationUrl(notify: NotifyConfig, store: NotificationStore): string {
	if (store === "app_store") return notify.appleUrl ?? "/v1/notifications/apple";
	if (store === "amazon") return notify.amazonUrl ?? "/v1/notifications/amazon";
	return notify.googleUrl ?? "/v1/notifications/google";
}

/** Records a notification and, unless it is silent, sends it (push mode) or queues it (hold mode). */
export function addNotification(c: Context, input: NewNotification, createdAt = Date.now()): StoreNotification {
	const notify = configOf(c).notify;
	sequence += 1;
	const record: StoreNotification = {
		...input,
		seq: sequence,
		deliveryId: `delivery-${sequence}`,
		createdAt,
		url: notificationUrl(notify, input.store),
		deliveries: [],
		delivered: false,
	};
	notifications.push(record);
	if (notifications.length > MAX_NOTIFICATIONS) notifications.splice(0, notifications.length - MAX_NOTIFICATIONS);
	if (record.sent && !record.held) send(c, record);
	return record;
}

/** Pushes a notification now (push mode): it is due. */
function send(c: Context, n: StoreNotification): void {
	if (configOf(c).notify.mode === "push" && /^https?:\/\//.test(n.url)) c.executionCtx.waitUntil(push(n));
}

/** Lets held notifications of `store` go, oldest first: pushed now (push mode), or listed in the outbox (hold mode). */
export function release(c: Context, store: NotificationStore): number {
	const held = notifications.filter((n) => n.store === store && n.held);
	for (const n of held) {
		n.held = false;
		if (n.sent && !n.delivered) send(c, n);
	}
	return held.length;
}

export function allNotifications(): readonly StoreNotification[] {
	return notifications;
}

/** Stops delivering what `matches` picks and is not delivered yet (a subscription confirmation whose token is void). */
export function withdraw(matches: (n: StoreNotification) => boolean): void {
	for (const n of notifications) if (!n.delivered && matches(n)) n.sent = false;
}

/** Sent and not yet delivered (a failed attempt included), oldest first. */
export function pendingDeliveries(): StoreNotification[] {
	return notifications.filter((n) => n.sent && !n.held && !n.delivered);
}

export function notificationByDelivery(deliveryId: string): StoreNotification | undefined {
	return notifications.find((n) => n.deliveryId === deliveryId);
}

/** Received: Apple counts 200-206, Pub/Sub 102, 200, 201, 202 and 204; the emulator takes any 2xx. */
export function isSuccess(status: number): boolean {
	return status >= 200 && status <= 299;
}

export function recordAttempt(n: StoreNotification, status: number, at = Date.now()): void {
	n.deliveries.push({ at, status });
	if (isSuccess(status)) n.delivered = true;
}

async function push(n: StoreNotification): Promise<void> {
	for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length && !n.delivered; attempt++) {
		if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt - 1]));
		if (n.delivered) return;
		let status = 0;
		try {
			const response = await fetch(n.url, { method: "POST", headers: await n.headers(), body: n.body, signal: AbortSignal.timeout(PUSH_TIMEOUT_MS) });
			status = response.status;
			await response.body?.cancel();
		} catch (err) {
			console.log(`store emulator: ${n.store} notification ${n.id} to ${n.url} failed: ${err instanceof Error ? err.message : String(err)}`);
		}
		recordAttempt(n, status);
		if (!n.delivered) console.log(`store emulator: ${n.store} notification ${n.id} (${n.type}) answered ${status || "nothing"}; attempt ${attempt + 1}`);
	}
}
