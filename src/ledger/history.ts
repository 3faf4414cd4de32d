import type { Environment, Purchase, PurchaseKind, PurchaseState, Store } from "../purchase";
import { withSchema } from "./schema";

/**
 * The purchases table (migrations/): one row per store transaction, the history apps read and notifications keep
 * true. Only a purchase's claim writes its rows (src/ledger/claim.ts), so the owner and state here are always the
 * claim's.
 */

export interface HistoryEntry {
	store: Store;
	transactionId: string;
	appId: string;
	/** Null while nobody has claimed it (the store told us of it first). */
	userId: string | null;
	originalTransactionId: string | null;
	subscriptionId: string | null;
	linkedTransactionId: string | null;
	orderId: string | null;
	productId: string;
	kind: PurchaseKind;
	environment: Environment;
	state: PurchaseState;
	quantity: number;
	purchasedAt: number;
	expiresAt: number | null;
	graceExpiresAt: number | null;
	willRenew: boolean | null;
	price: number | null;
	currency: string | null;
	asOf: number;
	createdAt: number;
	updatedAt: number;
}

interface Row {
	store: string;
	transaction_id: string;
	app_id: string;
	user_id: string | null;
	original_transaction_id: string | null;
	subscription_id: string | null;
	linked_transaction_id: string | null;
	order_id: string | null;
	product_id: string;
	kind: string;
	environment: string;
	state: string;
	quantity: number;
	purchased_at: number;
	expires_at: number | null;
	grace_expires_at: number | null;
	will_renew: number | null;
	price: number | null;
	currency: string | null;
	as_of: number;
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
		subscriptionId: row.subscription_id,
		linkedTransactionId: row.linked_transaction_id,
		orderId: row.order_id,
		productId: row.product_id,
		kind: row.kind as PurchaseKind,
		environment: row.environment as Environment,
		state: row.state as PurchaseState,
		quantity: row.quantity,
		purchasedAt: row.purchased_at,
		expiresAt: row.expires_at,
		graceExpiresAt: row.grace_expires_at,
		willRenew: row.will_renew === null ? null : row.will_renew === 1,
		price: row.price,
		currency: row.currency,
		asOf: row.as_of,
		createdAt: row.created_at,
		updatedAt: row.updated_at,
	};
}

const COLUMNS = `store, transaction_id, app_id, user_id, original_transaction_id, subscription_id, linked_transaction_id, order_id,
	product_id, kind, environment, state, quantity, purchased_at, expires_at, grace_expires_at, will_renew, price, currency, as_of,
	created_at, updated_at`;

/** One row to write: a purchase as its claim holds it, and its owner (null while unclaimed). */
export interface HistoryWriteRow {
	purchase: Purchase;
	userId: string | null;
}

/**
 * The statement that writes the claim's current view of one purchase. The claim is the only writer and always
 * writes its latest state, so a row is simply replaced (created_at stays the first write's). The claim sends it to
 * D1 in one batch with the rest of what it changed (src/ledger/claim.ts).
 */
export function purchaseWrite(db: Pick<D1Database, "prepare">, { purchase: p, userId }: HistoryWriteRow, now = Date.now()): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO purchases (store, transaction_id, app_id, user_id, original_transaction_id, subscription_id, linked_transaction_id,
				order_id, product_id, kind, environment, state, quantity, purchased_at, expires_at, grace_expires_at, will_renew, price, currency,
				as_of, raw, created_at, updated_at)
			 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?22)
			 ON CONFLICT (store, transaction_id) DO UPDATE SET
				user_id = excluded.user_id,
				original_transaction_id = excluded.original_transaction_id,
				subscription_id = excluded.subscription_id,
				linked_transaction_id = excluded.linked_transaction_id,
				order_id = COALESCE(excluded.order_id, purchases.order_id),
				product_id = excluded.product_id,
				state = excluded.state,
				quantity = excluded.quantity,
				expires_at = excluded.expires_at,
				grace_expires_at = excluded.grace_expires_at,
				will_renew = excluded.will_renew,
				price = COALESCE(excluded.price, purchases.price),
				currency = COALESCE(excluded.currency, purchases.currency),
				as_of = excluded.as_of,
				raw = excluded.raw,
				updated_at = excluded.updated_at`,
		)
		.bind(
			p.store,
			p.transactionId,
			p.appId,
			userId,
			p.originalTransactionId,
			p.subscriptionId,
			p.linkedTransactionId,
			p.orderId,
			p.productId,
			p.kind,
			p.environment,
			p.state,
			p.quantity,
			p.purchasedAt,
			p.expiresAt,
			p.graceExpiresAt,
			p.willRenew === null ? null : p.willRenew ? 1 : 0,
			p.price,
			p.currency,
			p.asOf,
			JSON.stringify(p.raw ?? null),
			now,
		);
}

export async function findPurchase(db: D1Reader, store: Store, transactionId: string): Promise<HistoryEntry | null> {
	const row = await withSchema(() => db.prepare(`SELECT ${COLUMNS} FROM purchases WHERE store = ?1 AND transaction_id = ?2`).bind(store, transactionId).first<Row>());
	return row ? toEntry(row) : null;
}

/** Whoever owns any transaction of a subscription in the history: how claims made before subscriptions were owned as a whole are found. */
export async function ownerOfSubscription(db: D1Database, store: Store, appId: string, subscriptionId: string): Promise<{ userId: string; firstSeenAt: number } | null> {
	const row = await withSchema(() =>
		db
			.prepare(
				`SELECT user_id, created_at FROM purchases
				 WHERE store = ?1 AND app_id = ?2 AND user_id IS NOT NULL AND (subscription_id = ?3 OR original_transaction_id = ?3 OR transaction_id = ?3)
				 ORDER BY created_at LIMIT 1`,
			)
			.bind(store, appId, subscriptionId)
			.first<{ user_id: string; created_at: number }>(),
	);
	return row ? { userId: row.user_id, firstSeenAt: row.created_at } : null;
}

/** What reads need of D1: a database, or a session of one (D1's read replication, withSession). */
export type D1Reader = Pick<D1Database, "prepare" | "batch">;

/** D1 takes at most 100 bound parameters per query. */
const MAX_PRODUCTS_PER_QUERY = 90;

/**
 * A user's purchases of some products, in one query through purchases_by_user_product: the read side's question
 * ("what does this user have of these?"), as fast for a user with 1,000 purchases as with one.
 */
export async function userPurchasesOf(db: D1Reader, appId: string, userId: string, productIds: readonly string[]): Promise<HistoryEntry[]> {
	if (productIds.length === 0) return [];
	if (productIds.length > MAX_PRODUCTS_PER_QUERY) {
		const all = await withSchema(() => db.prepare(`SELECT ${COLUMNS} FROM purchases WHERE app_id = ?1 AND user_id = ?2`).bind(appId, userId).all<Row>());
		return all.results.map(toEntry).filter((e) => productIds.includes(e.productId));
	}
	const placeholders = productIds.map((_, i) => `?${i + 3}`).join(", ");
	const { results } = await withSchema(() =>
		db
			.prepare(`SELECT ${COLUMNS} FROM purchases WHERE app_id = ?1 AND user_id = ?2 AND product_id IN (${placeholders})`)
			.bind(appId, userId, ...productIds)
			.all<Row>(),
	);
	return results.map(toEntry);
}

/** The app's purchases with this order id or original transaction id (what a store's receipt e-mail or a notification shows). */
export async function findPurchasesBy(db: D1Reader, appId: string, by: { orderId: string } | { originalTransactionId: string }, limit = 100): Promise<HistoryEntry[]> {
	const statement =
		"orderId" in by
			? // Named: without statistics SQLite may prefer an index that starts with app_id, and read every purchase of the app.
				db.prepare(`SELECT ${COLUMNS} FROM purchases INDEXED BY purchases_by_order WHERE store IN ('google_play', 'app_store') AND order_id = ?1 AND app_id = ?2 LIMIT ?3`).bind(by.orderId, appId, limit)
			: db
					.prepare(`SELECT ${COLUMNS} FROM purchases INDEXED BY purchases_by_original WHERE store = 'app_store' AND original_transaction_id = ?1 AND app_id = ?2 ORDER BY purchased_at LIMIT ?3`)
					.bind(by.originalTransactionId, appId, limit);
	const { results } = await withSchema(() => statement.all<Row>());
	return results.map(toEntry);
}

/** Who holds each of these transactions (or the subscription it belongs to), for a check that claims nothing. */
export async function holdersOf(db: D1Reader, store: Store, appId: string, ids: readonly string[]): Promise<Map<string, { transactionId: string; subscriptionId: string | null; userId: string | null }>> {
	const found = new Map<string, { transactionId: string; subscriptionId: string | null; userId: string | null }>();
	for (let i = 0; i < ids.length; i += MAX_PRODUCTS_PER_QUERY / 2) {
		const chunk = ids.slice(i, i + MAX_PRODUCTS_PER_QUERY / 2);
		const placeholders = chunk.map((_, j) => `?${j + 3}`).join(", ");
		const { results } = await withSchema(() =>
			db
				.prepare(
					`SELECT transaction_id, subscription_id, user_id FROM purchases WHERE store = ?1 AND app_id = ?2
					 AND (transaction_id IN (${placeholders}) OR subscription_id IN (${placeholders}))`,
				)
				.bind(store, appId, ...chunk)
				.all<{ transaction_id: string; subscription_id: string | null; user_id: string | null }>(),
		);
		for (const r of results) found.set(r.transaction_id, { transactionId: r.transaction_id, subscriptionId: r.subscription_id, userId: r.user_id });
	}
	return found;
}

/** Where a page of history ends; the next page starts strictly after it. */
export interface HistoryCursor {
	purchasedAt: number;
	transactionId: string;
}

/** A user's purchases, newest first, `limit` at a time (keyset pagination: stable while rows are added). */
export async function listUserPurchases(
	db: D1Reader,
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
