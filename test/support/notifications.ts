/**
 * Store notifications in tests. The emulator runs with notify.mode "hold" (vitest.config.ts): in the test pool it
 * cannot reach the service's fetch handler, so the notifications it makes wait in its outbox, and tests deliver them
 * here, exactly as the store would: the same body and headers (a fresh Pub/Sub OIDC token each time), POSTed to the
 * service's notification route, with the service's answer reported back (a non-2xx keeps it for redelivery).
 * The typed admin wrappers are on `emulator` (service.ts) and `appleEmulator` (apple-service.ts).
 */
import { exports } from "cloudflare:workers";
import { BASE, emulator, type OutboxDelivery } from "./service.ts";

export type { EmulatorNotification, OutboxDelivery } from "./service.ts";

export interface DeliveredNotification {
	notificationId: string;
	deliveryId: string;
	store: "app_store" | "google_play" | "amazon";
	type?: string;
	/** What the service answered. */
	status: number;
	/** The service's answer, parsed when it is JSON. */
	body: any;
}

export interface DeliverOptions {
	/** Deliver only these (each test file has an emulator of its own, whose outbox holds what every test of the file made). */
	only?: (delivery: OutboxDelivery) => boolean;
	/** All at once instead of one by one, in order. */
	concurrently?: boolean;
}

/** The service's path for a delivery's URL: notify.appleUrl / googleUrl when set, else already a path. */
function pathOf(url: string): string {
	const parsed = new URL(url, BASE);
	return `${parsed.pathname}${parsed.search}`;
}

/** POSTs one delivery to the service through its fetch handler and reports the answer to the emulator. */
export async function deliver(delivery: OutboxDelivery): Promise<DeliveredNotification> {
	const response = await exports.default.fetch(
		new Request(`${BASE}${pathOf(delivery.url)}`, { method: delivery.method, headers: delivery.headers, body: delivery.body }),
	);
	const text = await response.text();
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		// Not JSON: kept as text.
	}
	await emulator.reportDelivery(delivery.deliveryId, response.status);
	return { notificationId: delivery.notificationId, deliveryId: delivery.deliveryId, store: delivery.store, type: delivery.type, status: response.status, body };
}

/** Delivers what the emulator's outbox holds (or the part `only` picks) and returns what the service answered to each. */
export async function deliverNotifications(options: DeliverOptions = {}): Promise<DeliveredNotification[]> {
	const due = (await emulator.outbox()).filter(options.only ?? (() => true));
	if (options.concurrently) return Promise.all(due.map(deliver));
	const delivered: DeliveredNotification[] = [];
	for (const delivery of due) delivered.push(await deliver(delivery));
	return delivered;
}

/** Picks the deliveries about one transaction id (App Store) or purchase token (Google Play). */
export function about(transactionIdOrToken: string): (delivery: OutboxDelivery) => boolean {
	return (delivery) => delivery.transactionId === transactionIdOrToken;
}

/** The DeveloperNotification inside a Pub/Sub push body, decoded (standard base64 of UTF-8 JSON). */
export function developerNotification(pushBody: string): Record<string, any> {
	const { message } = JSON.parse(pushBody) as { message: { data: string } };
	const bytes = Uint8Array.from(atob(message.data), (ch) => ch.charCodeAt(0));
	return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, any>;
}
