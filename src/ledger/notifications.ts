import type { Store } from "../purchase";
import type { D1Reader } from "./history";
import { withSchema } from "./schema";

/** The notifications table (migrations/0002): every store notification applied, a purchase's timeline. */

export interface NotificationRecord {
	store: Store;
	/** Apple's notificationUUID, Pub/Sub's messageId, SNS's MessageId (Amazon). */
	id: string;
	appId: string;
	type: string;
	subtype: string | null;
	transactionId: string | null;
	subscriptionId: string | null;
	environment: string | null;
	/** The store's time for it (ms). */
	signedAt: number;
	source: "push" | "catch_up";
	payload: unknown;
}

/** Records a notification once; a redelivery (or the catch-up replaying it) changes nothing. */
export async function recordNotification(db: D1Database, n: NotificationRecord, now = Date.now()): Promise<void> {
	await withSchema(() =>
		db
			.prepare(
				`INSERT INTO notifications (store, notification_id, app_id, type, subtype, transaction_id, subscription_id, environment, signed_at,
					received_at, source, payload)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
				 ON CONFLICT (store, notification_id) DO NOTHING`,
			)
			.bind(n.store, n.id, n.appId, n.type, n.subtype, n.transactionId, n.subscriptionId, n.environment, n.signedAt, now, n.source, JSON.stringify(n.payload ?? null))
			.run(),
	);
}

/** Whether a notification was applied and recorded already: a redelivery need not ask the store again. */
export async function notificationRecorded(db: D1Database, store: Store, id: string): Promise<boolean> {
	const row = await withSchema(() => db.prepare(`SELECT 1 AS found FROM notifications WHERE store = ?1 AND notification_id = ?2`).bind(store, id).first<{ found: number }>());
	return row !== null;
}

export interface TimelineEntry {
	id: string;
	type: string;
	subtype: string | null;
	transactionId: string | null;
	signedAt: number;
	receivedAt: number;
	source: string;
}

/** What the store said about a transaction, or the subscription it belongs to, oldest first. */
export async function timelineOf(db: D1Reader, store: Store, transactionId: string, subscriptionId: string | null): Promise<TimelineEntry[]> {
	const { results } = await withSchema(() =>
		db
			.prepare(
				`SELECT notification_id, type, subtype, transaction_id, signed_at, received_at, source FROM notifications
				 WHERE store = ?1 AND (transaction_id = ?2 OR (?3 IS NOT NULL AND subscription_id = ?3))
				 ORDER BY signed_at, received_at LIMIT 500`,
			)
			.bind(store, transactionId, subscriptionId)
			.all<{ notification_id: string; type: string; subtype: string | null; transaction_id: string | null; signed_at: number; received_at: number; source: string }>(),
	);
	return results.map((r) => ({ id: r.notification_id, type: r.type, subtype: r.subtype, transactionId: r.transaction_id, signedAt: r.signed_at, receivedAt: r.received_at, source: r.source }));
}
