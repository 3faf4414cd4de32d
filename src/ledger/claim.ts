import { DurableObject } from "cloudflare:workers";
import { type Purchase, type Store } from "../purchase";
import { StoreUnreachable } from "../answers";
import { setPurchaseState, upsertPurchase } from "./history";
import { isSchemaMissing } from "./schema";
import { acknowledgeWithStore, consumeWithStore, StoreActionRefused } from "./store-actions";
import { createLogger } from "../log";

/**
 * The exactly-once claim: one Durable Object per (store, transaction id). The first user to present a
 * verified purchase owns it for good; the same user again is a restore; anyone else is refused. The owner
 * decision is made synchronously against the object's own SQLite storage before any await, so concurrent
 * duplicates are serialized and resolve to exactly one owner.
 *
 * The object also finishes what a grant starts, whatever fails after: it writes the purchase to D1 (and
 * retries from its alarm until D1 has it), and acknowledges the purchase with the store (retried with
 * backoff until the store confirms), because Google refunds purchases left unacknowledged for three days.
 */

export type ClaimOutcome =
	| { status: "granted"; seenBefore: boolean; ownerUserId: string; firstSeenAt: number; history: HistoryWrite }
	| { status: "owned_by_another_user"; firstSeenAt: number }
	| { status: "product_mismatch"; claimedProductId: string };

/** Whether D1 holds the grant: written, refused for now (the alarm retries), or missing its schema (an operator must act). */
export type HistoryWrite = "recorded" | "unavailable" | "schema_missing";

/** Errors do not keep their class across RPC, so store failures come back as outcomes. */
export type ConsumeOutcome =
	| { status: "consumed" | "not_owner" | "unclaimed" | "not_consumable" | "already_consumed" | "in_progress" }
	| { status: "store_refused"; message: string }
	| { status: "store_unreachable"; message: string; retryAfterSeconds?: number };

export interface ClaimRecord {
	store: string;
	transactionId: string;
	appId: string;
	userId: string;
	productId: string;
	firstSeenAt: number;
	historySynced: boolean;
	ackState: "none" | "pending" | "done" | "abandoned";
	ackAttempts: number;
	consumeState: "none" | "in_progress" | "done";
}

interface ClaimRow {
	store: string;
	transaction_id: string;
	app_id: string;
	user_id: string;
	product_id: string;
	first_seen_at: number;
	purchase: string;
	history_synced: number;
	ack_state: ClaimRecord["ackState"];
	ack_attempts: number;
	consume_state: ClaimRecord["consumeState"];
	[key: string]: SqlStorageValue;
}

/** Versioned schema: append, never edit. */
const SCHEMA = [
	`CREATE TABLE claim (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		store TEXT NOT NULL,
		transaction_id TEXT NOT NULL,
		app_id TEXT NOT NULL,
		user_id TEXT NOT NULL,
		product_id TEXT NOT NULL,
		first_seen_at INTEGER NOT NULL,
		purchase TEXT NOT NULL,
		history_synced INTEGER NOT NULL DEFAULT 0,
		ack_state TEXT NOT NULL DEFAULT 'none',
		ack_attempts INTEGER NOT NULL DEFAULT 0,
		consume_state TEXT NOT NULL DEFAULT 'none'
	)`,
];

const FIRST_RETRY_MS = 10_000;
const MAX_RETRY_MS = 60 * 60 * 1000;

export function claimKey(store: string, transactionId: string): string {
	return `${store}:${transactionId}`;
}

export class TransactionClaim extends DurableObject<Env> {
	readonly #sql: SqlStorage;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => this.#migrate());
	}

	/** Claims a verified purchase for `userId`. */
	async claim(purchase: Purchase, userId: string): Promise<ClaimOutcome> {
		const now = Date.now();
		const existing = this.#row();
		const purchaseJson = JSON.stringify(purchase);
		let seenBefore = false;
		let unchanged = false;
		if (existing) {
			if (existing.user_id !== userId || existing.app_id !== purchase.appId) {
				return { status: "owned_by_another_user", firstSeenAt: existing.first_seen_at };
			}
			if (existing.product_id !== purchase.productId) return { status: "product_mismatch", claimedProductId: existing.product_id };
			seenBefore = true;
			// A replay the store answered exactly as before, already in D1: nothing to write again.
			unchanged = existing.history_synced === 1 && existing.purchase === purchaseJson;
			if (!unchanged) this.#sql.exec(`UPDATE claim SET purchase = ?, history_synced = 0 WHERE id = 1`, purchaseJson);
		} else {
			this.#sql.exec(
				`INSERT INTO claim (id, store, transaction_id, app_id, user_id, product_id, first_seen_at, purchase, ack_state)
				 VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`,
				purchase.store,
				purchase.transactionId,
				purchase.appId,
				userId,
				purchase.productId,
				now,
				purchaseJson,
				purchase.needsAcknowledgement ? "pending" : "none",
			);
		}
		const row = this.#row()!;
		const history = unchanged ? "recorded" : await this.#syncHistory(purchase, row.user_id);
		if (history !== "recorded" || row.ack_state === "pending") await this.#scheduleRetry(history === "recorded" ? 0 : FIRST_RETRY_MS);
		return { status: "granted", seenBefore, ownerUserId: row.user_id, firstSeenAt: row.first_seen_at, history };
	}

	/** For /health: the namespace answers and the object's storage is usable (one read). */
	async ping(): Promise<"ok"> {
		this.#sql.exec(`SELECT version FROM schema_version`).toArray();
		return "ok";
	}

	/** Who owns this transaction, if anyone has claimed it. */
	async record(): Promise<ClaimRecord | null> {
		const row = this.#row();
		if (!row) return null;
		return {
			store: row.store,
			transactionId: row.transaction_id,
			appId: row.app_id,
			userId: row.user_id,
			productId: row.product_id,
			firstSeenAt: row.first_seen_at,
			historySynced: row.history_synced === 1,
			ackState: row.ack_state,
			ackAttempts: row.ack_attempts,
			consumeState: row.consume_state,
		};
	}

	/**
	 * Consumes the purchase with the store, once, for its owner. Marked in progress before the store call so
	 * a concurrent second request cannot consume twice; reverted if the store call fails.
	 */
	async consume(userId: string, appId: string): Promise<ConsumeOutcome> {
		const row = this.#row();
		if (!row) return { status: "unclaimed" };
		if (row.user_id !== userId || row.app_id !== appId) return { status: "not_owner" };
		const purchase = JSON.parse(row.purchase) as Purchase;
		if (purchase.kind !== "consumable") return { status: "not_consumable" };
		if (row.consume_state === "done") return { status: "already_consumed" };
		if (row.consume_state === "in_progress") return { status: "in_progress" };
		this.#sql.exec(`UPDATE claim SET consume_state = 'in_progress' WHERE id = 1`);
		try {
			await consumeWithStore(this.env, purchase);
		} catch (err) {
			this.#sql.exec(`UPDATE claim SET consume_state = 'none' WHERE id = 1`);
			if (err instanceof StoreActionRefused) return { status: "store_refused", message: err.message };
			if (err instanceof StoreUnreachable) return { status: "store_unreachable", message: err.message, retryAfterSeconds: err.options.retryAfterSeconds };
			throw err;
		}
		// A consumed purchase no longer needs acknowledging: consumption implies it.
		this.#sql.exec(`UPDATE claim SET consume_state = 'done', ack_state = CASE ack_state WHEN 'pending' THEN 'done' ELSE ack_state END WHERE id = 1`);
		await setPurchaseState(this.env.DB, row.store as Store, row.transaction_id, "consumed").catch((err: unknown) =>
			createLogger(`consume:${row.store}`).error("history_write_failed", { error: err }),
		);
		return { status: "consumed" };
	}

	/** Retries whatever a grant left unfinished: the D1 write and the store acknowledgement. */
	override async alarm(): Promise<void> {
		const row = this.#row();
		if (!row) return;
		const log = createLogger(`alarm:${row.store}:${row.transaction_id.slice(0, 16)}`);
		const purchase = JSON.parse(row.purchase) as Purchase;
		let unfinished = false;
		if (row.history_synced !== 1) unfinished = (await this.#syncHistory(purchase, row.user_id)) !== "recorded";
		if (row.ack_state === "pending") {
			this.#sql.exec(`UPDATE claim SET ack_attempts = ack_attempts + 1 WHERE id = 1`);
			try {
				await acknowledgeWithStore(this.env, purchase);
				this.#sql.exec(`UPDATE claim SET ack_state = 'done' WHERE id = 1`);
				log.info("acknowledged", { store: row.store, attempts: row.ack_attempts + 1 });
			} catch (err) {
				if (err instanceof StoreActionRefused) {
					// The store says this purchase cannot be acknowledged (voided, consumed elsewhere): retrying won't help.
					this.#sql.exec(`UPDATE claim SET ack_state = 'abandoned' WHERE id = 1`);
					log.warn("acknowledgement_refused", { store: row.store, reason: err.message });
				} else {
					unfinished = true;
					log.warn("acknowledgement_failed", { store: row.store, attempts: row.ack_attempts + 1, error: err });
				}
			}
		}
		if (unfinished) {
			const attempts = this.#row()!.ack_attempts;
			await this.#scheduleRetry(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1)));
		}
	}

	/** Writes the purchase to D1 for its owner; when D1 refuses (logged), the alarm retries. */
	async #syncHistory(purchase: Purchase, ownerUserId: string): Promise<HistoryWrite> {
		try {
			await upsertPurchase(this.env.DB, purchase, ownerUserId);
			this.#sql.exec(`UPDATE claim SET history_synced = 1 WHERE id = 1`);
			return "recorded";
		} catch (err) {
			createLogger(`claim:${purchase.store}`).error("history_write_failed", { error: err });
			return isSchemaMissing(err) ? "schema_missing" : "unavailable";
		}
	}

	async #scheduleRetry(delayMs: number): Promise<void> {
		const at = Date.now() + delayMs;
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > at) await this.ctx.storage.setAlarm(at);
	}

	#row(): ClaimRow | undefined {
		return this.#sql.exec<ClaimRow>(`SELECT * FROM claim WHERE id = 1`).toArray()[0];
	}

	#migrate(): void {
		this.#sql.exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
		const version = this.#sql.exec<{ version: number }>(`SELECT version FROM schema_version`).toArray()[0]?.version ?? 0;
		for (let v = version; v < SCHEMA.length; v++) this.#sql.exec(SCHEMA[v]!);
		if (version === 0) this.#sql.exec(`INSERT INTO schema_version (version) VALUES (?)`, SCHEMA.length);
		else if (version < SCHEMA.length) this.#sql.exec(`UPDATE schema_version SET version = ?`, SCHEMA.length);
	}
}
