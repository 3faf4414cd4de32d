import type { Environment, Purchase, PurchaseKind, PurchaseState, Store } from "../purchase";
import { withSchema } from "./schema";

/** The purchases table (migrations/0001): the history apps read and notifications keep true. */

export interface HistoryEntry {
	store: Store;
	transactionId: string;
	appId: string;
	userId: string;
	originalTransactionId: string | null;
	orderId: string | null;
	productId: string;
	kind: PurchaseKind;
	environment: Environment;
	state: PurchaseState;
	quantity: number;
	purchasedAt: number;
	expiresAt: number | null;
	createdAt: number;
	updatedAt: number;
}

interface Row {
	store: string;
	transaction_id: string;
	app_id: string;
	user_id: string;
	original_transaction_id: string | null;
	order_id: string | null;
	product_id: string;
	kind: string;
	environment: string;
	state: string;
	quantity: number;
	purchased_at: number;
	expires_at: number | null;
	created_at: number;
	updated_at: number;
}

function toEntry(row: Row): HistoryEntry {
	return {
		store: row.store as Store,
		transactionId: row.transaction_id,
		appId: row.app_id,
		userId: row.user_id,
		originalTransactionId: row.original_transaction_id,
		orderId: row.order_id,
		productId: row.product_id,
		kind: row.kind as PurchaseKind,
		environment: row.environment as Environment,
		state: row.state as PurchaseState,
		quantity: row.quantity,
		purchasedAt: row.purchased_at,
		expiresAt: row.expires_at,
		createdAt: row.created_at,
		updatedAt: row.updated_at,
	};
}

const COLUMNS = `store, transaction_id, app_id, user_id, original_transaction_id, order_id, product_id, kind, environment,
	state, quantity, purchased_at, expires_at, created_at, updated_at`;

/**
 * Inserts or refreshes a granted purchase. The owner and app never change once written: the claim decided
 * them, and a later upsert only refreshes what the store says (state, expiry, raw answer).
 */
export function upsertPurchase(db: D1Database, purchase: Purchase, userId: string, now = Date.now()) {
	return db
		.prepare(
			`INSERT INTO purchases (store, transaction_id, app_id, user_id, original_transaction_id, order_id, product_id, kind,
				environment, state, quantity, purchased_at, expires_at, raw, created_at, updated_at)
			 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)
			 ON CONFLICT (store, transaction_id) DO UPDATE SET
				original_transaction_id = COALESCE(excluded.original_transaction_id, purchases.original_transaction_id),
				order_id = COALESCE(excluded.order_id, purchases.order_id),
				state = CASE WHEN purchases.state = 'consumed' AND excluded.state = 'active' THEN purchases.state ELSE excluded.state END,
				quantity = excluded.quantity,
				expires_at = excluded.expires_at,
				raw = excluded.raw,
				updated_at = excluded.updated_at`,
		)
		.bind(
			purchase.store,
			purchase.transactionId,
			purchase.appId,
			userId,
			purchase.originalTransactionId,
			purchase.orderId,
			purchase.productId,
			purchase.kind,
			purchase.environment,
			purchase.state,
			purchase.quantity,
			purchase.purchasedAt,
			purchase.expiresAt,
			JSON.stringify(purchase.raw ?? null),
			now,
		)
		.run();
}

export function setPurchaseState(db: D1Database, store: Store, transactionId: string, state: PurchaseState, now = Date.now()) {
	return db.prepare(`UPDATE purchases SET state = ?3, updated_at = ?4 WHERE store = ?1 AND transaction_id = ?2`).bind(store, transactionId, state, now).run();
}

export async function findPurchase(db: D1Database, store: Store, transactionId: string): Promise<HistoryEntry | null> {
	const row = await withSchema(() => db.prepare(`SELECT ${COLUMNS} FROM purchases WHERE store = ?1 AND transaction_id = ?2`).bind(store, transactionId).first<Row>());
	return row ? toEntry(row) : null;
}

/** Where a page of history ends; the next page starts strictly after it. */
export interface HistoryCursor {
	purchasedAt: number;
	transactionId: string;
}

/** A user's purchases, newest first, `limit` at a time (keyset pagination: stable while rows are added). */
export async function listUserPurchases(
	db: D1Database,
	appId: string,
	userId: string,
	limit: number,
	after?: HistoryCursor,
): Promise<{ entries: HistoryEntry[]; next: HistoryCursor | null }> {
	const statement = after
		? db
				.prepare(
					`SELECT ${COLUMNS} FROM purchases WHERE app_id = ?1 AND user_id = ?2
					 AND (purchased_at < ?3 OR (purchased_at = ?3 AND transaction_id < ?4))
					 ORDER BY purchased_at DESC, transaction_id DESC LIMIT ?5`,
				)
				.bind(appId, userId, after.purchasedAt, after.transactionId, limit + 1)
		: db
				.prepare(`SELECT ${COLUMNS} FROM purchases WHERE app_id = ?1 AND user_id = ?2 ORDER BY purchased_at DESC, transaction_id DESC LIMIT ?3`)
				.bind(appId, userId, limit + 1);
	const { results } = await withSchema(() => statement.all<Row>());
	const entries = results.slice(0, limit).map(toEntry);
	const last = entries.at(-1);
	const next = results.length > limit && last ? { purchasedAt: last.purchasedAt, transactionId: last.transactionId } : null;
	return { entries, next };
}
