import { withSchema } from "./schema";
import type { D1Reader } from "./history";

/** The webhook_deliveries table (migrations/0004): one row per event per endpoint, updated on every attempt. */

export type DeliveryStatus = "pending" | "delivered" | "failed" | "dead";

export interface Delivery {
	id: string;
	appId: string;
	endpoint: string;
	eventId: string;
	eventType: string;
	store: string;
	transactionId: string;
	userId: string | null;
	status: DeliveryStatus;
	attempts: number;
	lastStatus: number | null;
	lastError: string | null;
	createdAt: number;
	updatedAt: number;
	deliveredAt: number | null;
}

interface Row {
	id: string;
	app_id: string;
	endpoint: string;
	event_id: string;
	event_type: string;
	store: string;
	transaction_id: string;
	user_id: string | null;
	status: DeliveryStatus;
	attempts: number;
	last_status: number | null;
	last_error: string | null;
	payload: string;
	created_at: number;
	updated_at: number;
	delivered_at: number | null;
}

const COLUMNS = "id, app_id, endpoint, event_id, event_type, store, transaction_id, user_id, status, attempts, last_status, last_error, created_at, updated_at, delivered_at";

function toDelivery(r: Omit<Row, "payload">): Delivery {
	return {
		id: r.id,
		appId: r.app_id,
		endpoint: r.endpoint,
		eventId: r.event_id,
		eventType: r.event_type,
		store: r.store,
		transactionId: r.transaction_id,
		userId: r.user_id,
		status: r.status,
		attempts: r.attempts,
		lastStatus: r.last_status,
		lastError: r.last_error,
		createdAt: r.created_at,
		updatedAt: r.updated_at,
		deliveredAt: r.delivered_at,
	};
}

/** Records deliveries to make; one already recorded (the same event handed over twice) is left as it is. */
export async function recordDeliveries(
	db: D1Database,
	deliveries: { id: string; appId: string; endpoint: string; eventId: string; eventType: string; store: string; transactionId: string; userId: string | null; payload: string }[],
	now = Date.now(),
): Promise<void> {
	if (deliveries.length === 0) return;
	const statement = db.prepare(
		`INSERT INTO webhook_deliveries (id, app_id, endpoint, event_id, event_type, store, transaction_id, user_id, status, attempts, payload, created_at, updated_at)
		 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, ?10, ?10) ON CONFLICT (id) DO NOTHING`,
	);
	await withSchema(() =>
		db.batch(deliveries.map((d) => statement.bind(d.id, d.appId, d.endpoint, d.eventId, d.eventType, d.store, d.transactionId, d.userId, d.payload, now))),
	);
}

export async function findDelivery(db: D1Reader, id: string): Promise<(Delivery & { payload: string }) | null> {
	const row = await withSchema(() => db.prepare(`SELECT ${COLUMNS}, payload FROM webhook_deliveries WHERE id = ?1`).bind(id).first<Row>());
	return row ? { ...toDelivery(row), payload: row.payload } : null;
}

/** One attempt's outcome. `dead`: given up on (the dead-letter queue has it). */
export async function recordAttempt(db: D1Database, id: string, outcome: { status: DeliveryStatus; httpStatus: number | null; error: string | null }, now = Date.now()): Promise<void> {
	await withSchema(() =>
		db
			.prepare(
				`UPDATE webhook_deliveries SET status = ?2, attempts = attempts + ?3, last_status = COALESCE(?4, last_status), last_error = ?5, updated_at = ?6,
					delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END
				 WHERE id = ?1`,
			)
			.bind(id, outcome.status, outcome.status === "dead" ? 0 : 1, outcome.httpStatus, outcome.error, now)
			.run(),
	);
}

/** Puts a delivery back to pending, for a redelivery someone asked for. */
export async function resetDelivery(db: D1Database, id: string, now = Date.now()): Promise<void> {
	await withSchema(() => db.prepare(`UPDATE webhook_deliveries SET status = 'pending', last_error = NULL, updated_at = ?2 WHERE id = ?1`).bind(id, now).run());
}

export interface DeliveryFilter {
	status?: DeliveryStatus | undefined;
	eventType?: string | undefined;
	transactionId?: string | undefined;
	before?: number | undefined;
	limit: number;
}

/** An app's deliveries, newest first, filtered. */
export async function listDeliveries(db: D1Reader, appId: string, filter: DeliveryFilter): Promise<Delivery[]> {
	const { results } = await withSchema(() =>
		db
			.prepare(
				`SELECT ${COLUMNS} FROM webhook_deliveries
				 WHERE app_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR event_type = ?3) AND (?4 IS NULL OR transaction_id = ?4)
					AND created_at < ?5
				 ORDER BY created_at DESC LIMIT ?6`,
			)
			.bind(appId, filter.status ?? null, filter.eventType ?? null, filter.transactionId ?? null, filter.before ?? Number.MAX_SAFE_INTEGER, filter.limit)
			.all<Omit<Row, "payload">>(),
	);
	return results.map(toDelivery);
}
