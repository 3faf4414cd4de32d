import type { ServiceEvent } from "../events/model";
import type { Store } from "../purchase";
import type { D1Reader } from "./history";
import { withSchema } from "./schema";

/**
 * The events table and the daily counts (migrations/0005): every event a claim reported, recorded once however often
 * the queue delivers it, and counted by day in the same batch, so the counts never count an event twice and never
 * miss one that was recorded.
 */

export type Metric = "new_purchase" | "renewal" | "refund" | "revocation" | "refusal";

/** What an event counts as, if anything: the metric and its dimension (a currency, or who revoked). */
function countedAs(event: ServiceEvent): { metric: Metric; dimension: string; amount: number } | undefined {
	const p = event.purchase;
	const money = { dimension: p.currency ?? "", amount: p.price === null ? 0 : p.price * Math.max(1, p.quantity) };
	switch (event.type) {
		case "purchase.granted":
			return { metric: "new_purchase", ...money };
		case "subscription.renewed":
			return { metric: "renewal", ...money };
		case "purchase.refunded":
			return { metric: "refund", ...money };
		case "purchase.revoked":
			return { metric: "revocation", dimension: "store", amount: 0 };
		case "ownership.transferred":
			return event.ownership?.action === "revoke" ? { metric: "revocation", dimension: "support", amount: 0 } : undefined;
		default:
			return undefined;
	}
}

/** The UTC day of a time, as the counts are keyed. */
export function dayOf(ms: number): string {
	return new Date(ms).toISOString().slice(0, 10);
}

/** Records an event and counts it, in one batch; an event already recorded changes nothing. */
export async function recordEvent(db: D1Database, event: ServiceEvent): Promise<void> {
	await withSchema(() => db.batch(eventWrites(db, event)));
}

/**
 * The statements that record an event and count it, for a batch: the consumer's (recordEvent), or the claim's own
 * write of the purchase the event reports, so that the two land together. An event recorded before changes nothing.
 */
export function eventWrites(db: Pick<D1Database, "prepare">, event: ServiceEvent): D1PreparedStatement[] {
	const counted = countedAs(event);
	const statements: D1PreparedStatement[] = [];
	if (counted) {
		// Counted only if not recorded yet: the guard and the insert below run in one transaction.
		statements.push(
			db
				.prepare(
					`INSERT INTO daily_counts (app_id, day, store, environment, metric, dimension, count, amount)
					 SELECT ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7 WHERE NOT EXISTS (SELECT 1 FROM events WHERE id = ?8)
					 ON CONFLICT (app_id, day, store, environment, metric, dimension) DO UPDATE SET count = count + 1, amount = amount + excluded.amount`,
				)
				.bind(event.appId, dayOf(event.at), event.store, event.purchase.environment, counted.metric, counted.dimension, counted.amount, event.id),
		);
	}
	statements.push(
		db
			.prepare(
				`INSERT INTO events (id, app_id, store, claim, transaction_id, type, user_id, environment, at, payload)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING`,
			)
			.bind(event.id, event.appId, event.store, event.claim, event.purchase.transactionId, event.type, event.userId, event.purchase.environment, event.at, JSON.stringify(event)),
	);
	return statements;
}

/** Counts a refusal answered to someone presenting evidence (what no event reports: most refusals touch no claim). */
export async function countRefusal(db: D1Database, appId: string, store: Store, code: string, environment: string | null, at = Date.now()): Promise<void> {
	await withSchema(() =>
		db
			.prepare(
				`INSERT INTO daily_counts (app_id, day, store, environment, metric, dimension, count, amount) VALUES (?1, ?2, ?3, ?4, 'refusal', ?5, 1, 0)
				 ON CONFLICT (app_id, day, store, environment, metric, dimension) DO UPDATE SET count = count + 1`,
			)
			.bind(appId, dayOf(at), store, environment ?? "", code)
			.run(),
	);
}

export interface EventEntry {
	id: string;
	type: string;
	transactionId: string;
	userId: string | null;
	at: number;
}

/** A claim's events, oldest first: what happened to a purchase (or its whole subscription) here. */
export async function eventsOf(db: D1Reader, store: Store, claim: string): Promise<EventEntry[]> {
	const { results } = await withSchema(() =>
		db
			.prepare(`SELECT id, type, transaction_id, user_id, at FROM events WHERE store = ?1 AND claim = ?2 ORDER BY at, id LIMIT 500`)
			.bind(store, claim)
			.all<{ id: string; type: string; transaction_id: string; user_id: string | null; at: number }>(),
	);
	return results.map((r) => ({ id: r.id, type: r.type, transactionId: r.transaction_id, userId: r.user_id, at: r.at }));
}
