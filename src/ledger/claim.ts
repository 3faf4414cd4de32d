import { DurableObject } from "cloudflare:workers";
import type { RefusalCode } from "../answers";
import { StoreUnreachable } from "../answers";
import { createLogger } from "../log";
import { currentState, isEntitled, type Purchase, type PurchaseState, type Store } from "../purchase";
import { auditWrite, type AuditEntry, type OwnershipAction } from "./audit";
import { ownerOfSubscription, purchaseWrite } from "./history";
import { mergeStatement, sameStatement, voided } from "./merge";
import { channelName } from "../events/channel";
import type { EventMessage } from "../events/consumer";
import { viewOf, type EventType, type ServiceEvent } from "../events/model";
import { observe, transitions, type Observed } from "../events/transitions";
import { eventWrites } from "./event-log";
import { d1Failure, withSchema } from "./schema";
import { acknowledgeWithStore, consumeWithStore, StoreActionRefused } from "./store-actions";

/**
 * The exactly-once claim: one Durable Object per thing a user can own. That is a transaction for a one-time
 * purchase, and a whole subscription for an auto-renewing one (keyed by Apple's originalTransactionId, or the first
 * purchase token of Google's linkedPurchaseToken chain), so that every renewal and plan change belongs to whoever
 * owns the subscription. The first user to present a purchase that grants access owns it; the same user again is a
 * restore; anyone else is refused.
 *
 * The object also holds the latest statement the stores made about each of its transactions, whoever brought it: a
 * user presenting evidence, a store notification, the scheduled catch-up. Statements are merged by when the store
 * made them (src/ledger/merge.ts), so a refund notified yesterday is not undone by a signed transaction from last
 * month. Decisions are made synchronously against the object's own SQLite storage, before any await, so concurrent
 * requests are serialized and resolve to one owner.
 *
 * And it finishes what it starts, whatever fails after: it writes its transactions to D1 (retrying from its alarm
 * until D1 has them) and acknowledges Google purchases (retried with backoff until Google confirms), because Google
 * refunds purchases left unacknowledged for three days.
 *
 * A subscription also changes by time alone: it expires, or its grace period ends. The alarm wakes the object a
 * little after that moment (LAPSE_MARGIN_MS), and if no store statement has since moved it on (a renewal), reports
 * the change as events, as a store notification would, so webhooks and live sockets agree with what the history
 * answers by then.
 */

/** Whether D1 holds what the claim holds: written, refused for now (the alarm retries), or missing its schema (an operator must act). */
export type HistoryWrite = "recorded" | "unavailable" | "schema_missing";

export interface ClaimOptions {
	/** The user presents the purchase as a restore (a new device, a reinstall). */
	restore?: boolean;
	/** The app's ownership policy is transfer_on_restore: a restore by another user moves the purchase to them. */
	transferOnRestore?: boolean;
}

export type ClaimOutcome =
	| {
			status: "granted";
			seenBefore: boolean;
			ownerUserId: string;
			firstSeenAt: number;
			history: HistoryWrite;
			purchase: Purchase;
			transferredFrom?: string;
			/** D1's bookmark of the write, for the caller's next read (x-d1-bookmark). */
			bookmark: string | null;
	  }
	/** The purchase is in a state that grants nothing (refunded, expired, ...), as the store said it. */
	| { status: "refused"; code: RefusalCode; seenBefore: boolean; purchase: Purchase }
	| { status: "owned_by_another_user"; firstSeenAt: number }
	| { status: "product_mismatch"; claimedProductId: string }
	/** D1 could not say whether someone already owns this subscription: no decision yet, the caller retries. */
	| { status: "undecided"; history: Exclude<HistoryWrite, "recorded"> };

/** A replay of evidence the claim may answer from what it holds (src/ledger/replay.ts), with the app's freshness policy. */
export interface ReplayRequest {
	appId: string;
	userId: string;
	productId: string;
	/** What the evidence says the purchase is, where it says (Google's endpoint choice; the app's catalogue). */
	kind?: "one_time" | "subscription";
	/** The store account the evidence names (Amazon's user id): the held transaction must have been confirmed for it. */
	storeUserId?: string;
	restore: boolean;
	transferOnRestore: boolean;
	acceptSandbox: boolean;
	/** How old the store's last word may be, per kind. */
	maxAgeMs: { oneTime: number; subscription: number };
}

export type ReplayOutcome =
	| { status: "granted"; purchase: Purchase; firstSeenAt: number; history: HistoryWrite; bookmark: string | null }
	/** A state the store stated and that no later word can undo (a Google refund): the same "no" the store would give. */
	| { status: "refused"; code: RefusalCode; seenBefore: boolean; purchase: Purchase }
	| { status: "owned_by_another_user"; firstSeenAt: number }
	/** Only the store can answer this: never seen, unowned, stale, lapsed, in grace or on hold, or not what was presented. */
	| { status: "ask_store"; why: string };

/** A store's statement about one transaction, brought by a notification or the catch-up rather than by a user. */
export type Statement =
	| { kind: "purchase"; purchase: Purchase }
	/** The store voided this transaction (a refund or chargeback), known by id and time only. */
	| { kind: "voided"; store: Store; transactionId: string; state: "refunded" | "revoked"; asOf: number };

export type ApplyOutcome = {
	status: "applied" | "unchanged" | "duplicate" | "unknown_transaction" | "undecided";
	history: HistoryWrite;
	/** The owner, if anyone has claimed it. */
	ownerUserId: string | null;
};

export type SupportOutcome = { status: "unknown" } | { status: "done"; fromUserId: string | null; toUserId: string | null; history: HistoryWrite };

/** Errors do not keep their class across RPC, so store failures come back as outcomes. */
export type ConsumeOutcome =
	| { status: "consumed" | "not_owner" | "unclaimed" | "not_consumable" | "already_consumed" | "in_progress" }
	| { status: "store_refused"; message: string }
	| { status: "store_unreachable"; message: string; retryAfterSeconds?: number };

export interface ClaimTransaction {
	purchase: Purchase;
	historySynced: boolean;
	ackState: "none" | "pending" | "done" | "abandoned";
	ackAttempts: number;
	consumeState: "none" | "in_progress" | "done";
}

export interface ClaimRecord {
	store: string;
	/** The claim's key: the transaction id, or the subscription id for an auto-renewing subscription. */
	key: string;
	appId: string;
	userId: string | null;
	/** Support revoked it: nobody is granted it until support transfers it to someone. */
	revoked: boolean;
	productId: string;
	firstSeenAt: number;
	transactions: ClaimTransaction[];
}

interface UnitRow {
	store: string;
	key: string;
	app_id: string;
	user_id: string | null;
	product_id: string;
	subscription: number;
	first_seen_at: number;
	revoked: number;
	events: number;
	[column: string]: SqlStorageValue;
}

interface TxnRow {
	transaction_id: string;
	purchase: string;
	version: number;
	synced_version: number;
	ack_state: ClaimTransaction["ackState"];
	ack_attempts: number;
	consume_state: ClaimTransaction["consumeState"];
	observed: string | null;
	[column: string]: SqlStorageValue;
}

/** Version 2 of the object's storage, as created; frozen, since upgrades from version 1 build on exactly this. */
const SCHEMA_V2 = `
	CREATE TABLE unit (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		store TEXT NOT NULL,
		key TEXT NOT NULL,
		app_id TEXT NOT NULL,
		user_id TEXT,
		product_id TEXT NOT NULL,
		subscription INTEGER NOT NULL,
		first_seen_at INTEGER NOT NULL,
		revoked INTEGER NOT NULL DEFAULT 0,
		events INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE txn (
		transaction_id TEXT PRIMARY KEY,
		purchase TEXT NOT NULL,
		version INTEGER NOT NULL DEFAULT 1,
		synced_version INTEGER NOT NULL DEFAULT 0,
		ack_state TEXT NOT NULL DEFAULT 'none',
		ack_attempts INTEGER NOT NULL DEFAULT 0,
		consume_state TEXT NOT NULL DEFAULT 'none',
		observed TEXT
	);
	CREATE TABLE seen_notification (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
	CREATE TABLE audit (id TEXT PRIMARY KEY, entry TEXT NOT NULL);
	CREATE TABLE outbox (id TEXT PRIMARY KEY, event TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0, queued INTEGER NOT NULL DEFAULT 0);
`;

/** Version 3: whether an event in the outbox is already in D1, written with the purchase it reports. */
const OUTBOX_RECORDED = `ALTER TABLE outbox ADD COLUMN recorded INTEGER NOT NULL DEFAULT 0;`;

/** The storage a new object starts with: today's version. */
const SCHEMA = `${SCHEMA_V2}
	${OUTBOX_RECORDED}`;

/**
 * How objects made by earlier versions reach SCHEMA: UPGRADES[v] takes version v+1 to v+2. Append, never edit.
 * Version 1 held one claim per transaction; it moves over as a unit of one transaction.
 */
const UPGRADES = [
	`${SCHEMA_V2}
	INSERT INTO unit (id, store, key, app_id, user_id, product_id, subscription, first_seen_at)
		SELECT 1, store, transaction_id, app_id, user_id, product_id, 0, first_seen_at FROM claim;
	INSERT INTO audit (id, entry)
		SELECT 'claim:' || transaction_id, json_object('store', store, 'claimId', transaction_id, 'transactionId', transaction_id, 'appId', app_id,
			'action', 'claim', 'fromUserId', NULL, 'toUserId', user_id, 'actor', 'user', 'reason', NULL, 'at', first_seen_at) FROM claim;
	INSERT INTO txn (transaction_id, purchase, version, synced_version, ack_state, ack_attempts, consume_state)
		SELECT transaction_id, purchase, 1, history_synced, ack_state, ack_attempts, consume_state FROM claim;
	DROP TABLE claim;`,
	OUTBOX_RECORDED,
];
const VERSION = UPGRADES.length + 1;

const FIRST_RETRY_MS = 10_000;
const MAX_RETRY_MS = 60 * 60 * 1000;
/**
 * How long after a subscription's expiry (or grace end) the alarm reports it, when no store statement has moved it
 * on by then: stores renew at about the expiry and notify shortly after, so a renewal usually lands first and no
 * subscription.expired goes out for a subscription that renewed.
 */
export const LAPSE_MARGIN_MS = 60_000;
/** Stores redeliver for days (Apple up to 72 h after the last try, Pub/Sub 7 days): remember ids for longer. */
const SEEN_NOTIFICATION_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** The claim a purchase belongs to: its subscription's, or its own. */
export function claimKey(store: string, unitId: string): string {
	return `${store}:${unitId}`;
}

export function unitIdOf(purchase: Pick<Purchase, "subscriptionId" | "transactionId">): string {
	return purchase.subscriptionId ?? purchase.transactionId;
}

/** Why a purchase in `state` grants nothing, in the words apps match on. */
export function refusalFor(state: PurchaseState): RefusalCode {
	switch (state) {
		case "refunded":
		case "revoked":
		case "expired":
		case "canceled":
		case "pending":
		case "superseded":
			return state;
		case "on_hold":
		case "paused":
		case "active":
		case "in_grace_period":
		case "consumed":
			return "inactive";
	}
}

/** A stored purchase; one stored before a field existed reads with that field's "not stated" value. */
function readPurchase(text: string): Purchase {
	const stored = JSON.parse(text) as Partial<Purchase>;
	return {
		subscriptionId: null,
		linkedTransactionId: null,
		graceExpiresAt: null,
		willRenew: null,
		price: null,
		currency: null,
		asOf: 0,
		...stored,
	} as Purchase;
}

/** A state no later statement changes (src/ledger/merge.ts): a Google refund or revocation, a superseded purchase. */
function isFinal(purchase: Purchase): boolean {
	return purchase.state === "superseded" || (purchase.store === "google_play" && (purchase.state === "refunded" || purchase.state === "revoked"));
}

/** The purchase (as the claim holds it) is something its owner may be granted now. */
function grants(purchase: Purchase, now: number): boolean {
	// A consumable already consumed was delivered: its owner presenting it again (an app finishing the transaction
	// after a crash) completes, though it no longer counts as access.
	return isEntitled(purchase, now) || (purchase.kind === "consumable" && purchase.state === "consumed");
}

export class TransactionClaim extends DurableObject<Env> {
	readonly #sql: SqlStorage;
	/** D1 writes, one at a time, each writing the latest state: a slow write never lands after a newer one. */
	#writing: Promise<unknown> = Promise.resolve();
	/** The outbox being handed on, if it is: one hand-over at a time. */
	#dispatching: Promise<void> | undefined;
	/** Whether the hand-over under way should take another round (events were written meanwhile). */
	#dispatchAgain = false;
	/** The D1 bookmark of this object's latest write, for callers to read their own write. */
	#bookmark: string | null = null;
	/** The one look-up of an earlier owner in D1 when a subscription's claim first opens, shared by concurrent callers. */
	#opening: Promise<void> | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => this.#migrate());
	}

	/** A user presents a verified purchase: grant it, restore it, or refuse it. */
	async claim(said: Purchase, userId: string, options: ClaimOptions = {}): Promise<ClaimOutcome> {
		const opened = await this.#open(said);
		if (opened !== "recorded") return { status: "undecided", history: opened };
		const now = Date.now();
		const unit = this.#unit()!;
		if (unit.app_id !== said.appId) return { status: "owned_by_another_user", firstSeenAt: unit.first_seen_at };
		this.#hold(said);
		const purchase = this.#standing(said.transactionId, unit.subscription === 1, now);
		const ownedBefore = unit.user_id;
		if (unit.revoked === 1) {
			// Support took it away: nobody gets it until support gives it to someone (transfer).
			await this.#settle();
			return { status: "refused", code: "revoked", seenBefore: false, purchase };
		}
		if (ownedBefore !== null && ownedBefore !== userId) {
			// With transfer_on_restore, a restore moves the purchase (a whole subscription) to the user restoring it.
			if (options.restore && options.transferOnRestore && grants(purchase, now)) {
				this.#changeOwner(userId, { action: "restore_transfer", actor: "user", reason: "restored by another user", transactionId: said.transactionId });
				this.#emit("purchase.restored", purchase);
				const history = await this.#settle();
				return { status: "granted", seenBefore: false, ownerUserId: userId, firstSeenAt: this.#unit()!.first_seen_at, history, purchase, transferredFrom: ownedBefore, bookmark: this.#bookmark };
			}
			// A sharing signal: someone else presented a purchase that is owned.
			this.#emit("ownership.refused", purchase, { fromUserId: ownedBefore, toUserId: ownedBefore, presentedBy: userId, action: "refused" });
			await this.#settle();
			return { status: "owned_by_another_user", firstSeenAt: unit.first_seen_at };
		}
		// One-time purchases are claimed for one product; a subscription may change plans, as its store vouched.
		if (unit.subscription === 0 && unit.product_id !== said.productId) {
			await this.#settle();
			return { status: "product_mismatch", claimedProductId: unit.product_id };
		}
		if (!grants(purchase, now)) {
			await this.#settle();
			return { status: "refused", code: refusalFor(currentState(purchase, now)), seenBefore: ownedBefore !== null, purchase };
		}
		if (ownedBefore === null) {
			this.#changeOwner(userId, { action: "claim", actor: "user", reason: null, transactionId: said.transactionId });
			this.#sql.exec(`UPDATE unit SET first_seen_at = ? WHERE id = 1`, now);
			this.#emit("purchase.granted", purchase);
		} else if (options.restore) {
			this.#emit("purchase.restored", purchase);
		}
		const history = await this.#settle();
		const owned = this.#unit()!;
		return { status: "granted", seenBefore: ownedBefore !== null, ownerUserId: userId, firstSeenAt: owned.first_seen_at, history, purchase, bookmark: this.#bookmark };
	}

	/**
	 * A user presents evidence of a transaction this claim may already hold: answer from what the stores last said, if
	 * that is recent enough under the app's policy and grants access, with no store call. Another user is refused
	 * from ownership alone, as claim() would refuse them whatever the store said. Anything else is for the store:
	 * the caller verifies the evidence and calls claim().
	 */
	async replay(transactionId: string, request: ReplayRequest): Promise<ReplayOutcome> {
		const unit = this.#unit();
		const row = this.#txn(transactionId);
		if (!unit || !row) return { status: "ask_store", why: "unknown" };
		if (unit.app_id !== request.appId) return { status: "owned_by_another_user", firstSeenAt: unit.first_seen_at };
		const now = Date.now();
		const subscription = unit.subscription === 1;
		const purchase = this.#standing(transactionId, subscription, now);
		if (unit.revoked === 1) return { status: "refused", code: "revoked", seenBefore: false, purchase };
		const owner = unit.user_id;
		if (owner === null) return { status: "ask_store", why: "unclaimed" };
		if (owner !== request.userId) {
			if (request.restore && request.transferOnRestore) return { status: "ask_store", why: "transfer_on_restore" };
			this.#emit("ownership.refused", purchase, { fromUserId: owner, toUserId: owner, presentedBy: request.userId, action: "refused" });
			await this.#settle();
			return { status: "owned_by_another_user", firstSeenAt: unit.first_seen_at };
		}
		if (request.kind !== undefined && (request.kind === "subscription") !== subscription) return { status: "ask_store", why: "kind" };
		const presented = readPurchase(row.purchase);
		if (subscription ? purchase.productId !== request.productId && presented.productId !== request.productId : unit.product_id !== request.productId) {
			return { status: "ask_store", why: "product" };
		}
		if (purchase.environment === "Sandbox" && !request.acceptSandbox) return { status: "ask_store", why: "sandbox" };
		// Evidence naming another store account than the one the store confirmed: only the store can say (Amazon: 497).
		if (request.storeUserId !== undefined && presented.storeUserId !== request.storeUserId) return { status: "ask_store", why: "store_user" };
		if (isFinal(purchase)) return { status: "refused", code: refusalFor(purchase.state), seenBefore: true, purchase };
		const state = currentState(purchase, now);
		// Lapsed, in grace, on hold, paused, refunded: asked again, the store may say otherwise now.
		const settled = subscription ? state === "active" || state === "canceled" : state === "active" || (purchase.kind === "consumable" && state === "consumed");
		if (!settled) return { status: "ask_store", why: `state ${state}` };
		const maxAge = subscription ? request.maxAgeMs.subscription : request.maxAgeMs.oneTime;
		if (now - purchase.asOf > maxAge) return { status: "ask_store", why: "stale" };
		// An unacknowledged Google purchase is refunded by Google after three days: until the claim has acknowledged it, ask.
		if (!subscription && purchase.needsAcknowledgement && this.#txn(purchase.transactionId)?.ack_state !== "done") return { status: "ask_store", why: "unacknowledged" };
		if (request.restore) this.#emit("purchase.restored", purchase);
		const history = await this.#settle();
		return { status: "granted", purchase, firstSeenAt: unit.first_seen_at, history, bookmark: this.#bookmark };
	}

	/**
	 * A store's statement that reached us other than through a user: a notification (deduplicated by its id, however
	 * often it is delivered), the catch-up, or support asking the store again (`audited`: who and why, kept in the
	 * audit trail). It changes what the claim holds, never who owns it.
	 */
	async apply(statement: Statement, notificationId?: string, audited?: { actor: string; reason: string }): Promise<ApplyOutcome> {
		if (notificationId !== undefined && this.#seen(notificationId)) {
			// Already applied; the store retries because we did not answer in time, or D1 failed: make sure D1 has it.
			return { status: "duplicate", history: await this.#settle(), ownerUserId: this.#unit()?.user_id ?? null };
		}
		let status: ApplyOutcome["status"];
		if (statement.kind === "purchase") {
			const opened = await this.#open(statement.purchase);
			if (opened !== "recorded") return { status: "undecided", history: opened, ownerUserId: null };
			status = this.#hold(statement.purchase).changed ? "applied" : "unchanged";
		} else {
			const row = this.#txn(statement.transactionId);
			if (!row) {
				status = "unknown_transaction";
			} else {
				const held = readPurchase(row.purchase);
				const next = voided(held, statement.state, statement.asOf);
				status = sameStatement(held, next) ? "unchanged" : "applied";
				if (status === "applied") this.#put(next, Date.now());
			}
		}
		if (notificationId !== undefined) {
			this.#sql.exec(`INSERT INTO seen_notification (id, at) VALUES (?, ?)`, notificationId, Date.now());
		}
		if (audited && statement.kind === "purchase" && this.#unit()) this.#audit("reverify", this.#unit()!.user_id, { ...audited, transactionId: statement.purchase.transactionId, outcome: status });
		const unit = this.#unit();
		if (unit?.user_id) this.#sql.exec(`UPDATE txn SET ack_state = 'pending' WHERE ack_state = 'none' AND json_extract(purchase, '$.needsAcknowledgement') = 1`);
		return { status, history: await this.#settle(), ownerUserId: unit?.user_id ?? null };
	}

	/**
	 * Support moves the purchase (a whole subscription) to another user, or takes it away from everyone (revoke).
	 * Through the claim, so a move racing a claim still ends with one owner, and D1 and the audit agree with it.
	 */
	async transfer(toUserId: string | null, actor: string, reason: string, transactionId: string): Promise<SupportOutcome> {
		const unit = this.#unit();
		if (!unit || !this.#txn(transactionId)) return { status: "unknown" };
		const fromUserId = unit.user_id;
		this.#changeOwner(toUserId, { action: toUserId === null ? "revoke" : "transfer", actor, reason, transactionId });
		const history = await this.#settle();
		return { status: "done", fromUserId, toUserId, history };
	}

	/** For /health: the namespace answers and the object's storage is usable (one read). */
	async ping(): Promise<"ok"> {
		this.#sql.exec(`SELECT version FROM schema_version`).toArray();
		return "ok";
	}

	/** Who owns this claim and what it holds, if anything. */
	async record(): Promise<ClaimRecord | null> {
		const unit = this.#unit();
		if (!unit) return null;
		return {
			store: unit.store,
			key: unit.key,
			appId: unit.app_id,
			userId: unit.user_id,
			revoked: unit.revoked === 1,
			productId: unit.product_id,
			firstSeenAt: unit.first_seen_at,
			transactions: this.#txns().map((row) => ({
				purchase: readPurchase(row.purchase),
				historySynced: row.synced_version >= row.version,
				ackState: row.ack_state,
				ackAttempts: row.ack_attempts,
				consumeState: row.consume_state,
			})),
		};
	}

	/**
	 * Consumes a transaction with the store, once, for its owner. Marked in progress before the store call so a
	 * concurrent second request cannot consume twice; reverted if the store call fails.
	 */
	async consume(userId: string, appId: string, transactionId: string): Promise<ConsumeOutcome> {
		const unit = this.#unit();
		const row = this.#txn(transactionId);
		if (!unit || !row || unit.user_id === null) return { status: "unclaimed" };
		if (unit.user_id !== userId || unit.app_id !== appId) return { status: "not_owner" };
		const purchase = readPurchase(row.purchase);
		if (purchase.kind !== "consumable") return { status: "not_consumable" };
		if (row.consume_state === "done") return { status: "already_consumed" };
		if (row.consume_state === "in_progress") return { status: "in_progress" };
		this.#sql.exec(`UPDATE txn SET consume_state = 'in_progress' WHERE transaction_id = ?`, transactionId);
		try {
			await consumeWithStore(this.env, purchase);
		} catch (err) {
			this.#sql.exec(`UPDATE txn SET consume_state = 'none' WHERE transaction_id = ?`, transactionId);
			if (err instanceof StoreActionRefused) return { status: "store_refused", message: err.message };
			if (err instanceof StoreUnreachable) return { status: "store_unreachable", message: err.message, retryAfterSeconds: err.options.retryAfterSeconds };
			throw err;
		}
		// A consumed purchase no longer needs acknowledging: consumption implies it.
		this.#sql.exec(
			`UPDATE txn SET consume_state = 'done', ack_state = CASE ack_state WHEN 'pending' THEN 'done' ELSE ack_state END WHERE transaction_id = ?`,
			transactionId,
		);
		this.#put({ ...purchase, state: "consumed", asOf: Math.max(purchase.asOf, Date.now()) }, Date.now());
		await this.#settle();
		return { status: "consumed" };
	}

	/** Reports what time alone changed (a subscription's expiry), and retries whatever is unfinished: D1 writes and store acknowledgements. */
	override async alarm(): Promise<void> {
		const unit = this.#unit();
		if (!unit) return;
		const log = createLogger(`alarm:${unit.store}:${unit.key.slice(0, 16)}`);
		this.#observeLapse(Date.now());
		let unfinished = (await this.#sync()) !== "recorded";
		if (!unfinished) await this.#dispatch();
		let attempts = 0;
		for (const row of this.#txns().filter((r) => r.ack_state === "pending")) {
			const purchase = readPurchase(row.purchase);
			if (!purchase.needsAcknowledgement) {
				// The store has since said it is acknowledged (the app did it): nothing left to send.
				this.#sql.exec(`UPDATE txn SET ack_state = 'done' WHERE transaction_id = ?`, row.transaction_id);
				continue;
			}
			this.#sql.exec(`UPDATE txn SET ack_attempts = ack_attempts + 1 WHERE transaction_id = ?`, row.transaction_id);
			attempts = Math.max(attempts, row.ack_attempts + 1);
			try {
				await acknowledgeWithStore(this.env, purchase);
				this.#sql.exec(`UPDATE txn SET ack_state = 'done' WHERE transaction_id = ?`, row.transaction_id);
				log.info("acknowledged", { store: unit.store, attempts: row.ack_attempts + 1 });
			} catch (err) {
				if (err instanceof StoreActionRefused) {
					// The store says this purchase cannot be acknowledged (voided, consumed elsewhere): retrying won't help.
					this.#sql.exec(`UPDATE txn SET ack_state = 'abandoned' WHERE transaction_id = ?`, row.transaction_id);
					log.warn("acknowledgement_refused", { store: unit.store, reason: err.message });
				} else {
					unfinished = true;
					log.warn("acknowledgement_failed", { store: unit.store, attempts: row.ack_attempts + 1, error: err });
				}
			}
		}
		this.#sql.exec(`DELETE FROM seen_notification WHERE at < ?`, Date.now() - SEEN_NOTIFICATION_TTL_MS);
		if (unfinished) await this.#scheduleRetry(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1)));
		await this.#watchLapse();
	}

	/**
	 * Creates the unit on first use. A subscription's claim made before subscriptions were owned as a whole lives
	 * under the transaction id a user presented; its owner is in D1, and is adopted here so nobody else can take
	 * the subscription now.
	 */
	async #open(purchase: Purchase): Promise<HistoryWrite> {
		if (this.#unit()) return "recorded";
		this.#opening ??= (async () => {
			const subscription = purchase.subscriptionId !== null;
			const earlier = subscription ? await ownerOfSubscription(this.env.DB, purchase.store, purchase.appId, purchase.subscriptionId!) : null;
			if (this.#unit()) return;
			this.#sql.exec(
				`INSERT INTO unit (id, store, key, app_id, user_id, product_id, subscription, first_seen_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)`,
				purchase.store,
				unitIdOf(purchase),
				purchase.appId,
				earlier?.userId ?? null,
				purchase.productId,
				subscription ? 1 : 0,
				earlier?.firstSeenAt ?? Date.now(),
			);
		})().finally(() => {
			this.#opening = undefined;
		});
		try {
			await this.#opening;
			return "recorded";
		} catch (err) {
			createLogger(`claim:${purchase.store}`).error("history_read_failed", { error: err });
			return d1Failure(err);
		}
	}

	/**
	 * Merges what a store said into what the claim holds for that transaction, and marks related ones: a Google
	 * purchase that names the one it replaces (linkedPurchaseToken) supersedes it. Synchronous: no await between
	 * reading and writing.
	 */
	#hold(said: Purchase): { changed: boolean } {
		const row = this.#txn(said.transactionId);
		const held = row ? (readPurchase(row.purchase)) : undefined;
		const merged = mergeStatement(held, said);
		const changed = !held || !sameStatement(held, merged);
		if (changed) this.#put(merged, Date.now());
		else if (held && merged.asOf > held.asOf) {
			// The same state, confirmed later: remember when, without a D1 write.
			this.#sql.exec(`UPDATE txn SET purchase = ? WHERE transaction_id = ?`, JSON.stringify(merged), said.transactionId);
		}
		if (said.linkedTransactionId !== null) {
			const linked = this.#txn(said.linkedTransactionId);
			const replaced = linked ? (readPurchase(linked.purchase)) : undefined;
			if (replaced && replaced.state !== "superseded") this.#put({ ...replaced, state: "superseded", asOf: Math.max(replaced.asOf, said.asOf) }, Date.now());
		}
		return { changed };
	}

	/**
	 * What a presented transaction stands for. A one-time purchase stands for itself. A subscription stands as its
	 * best transaction: one that grants access now (the latest-expiring), else its latest. An app holding an old
	 * period's transaction of a subscription that has renewed since (as a notification told us), or the token an
	 * upgrade replaced, presents the same subscription.
	 */
	#standing(transactionId: string, subscription: boolean, now: number): Purchase {
		const presented = readPurchase(this.#txn(transactionId)!.purchase);
		if (!subscription) return presented;
		const all = this.#txns().map((row) => readPurchase(row.purchase));
		const end = (p: Purchase) => Math.max(p.expiresAt ?? p.purchasedAt, p.graceExpiresAt ?? 0);
		const latest = (a: Purchase, b: Purchase) => (end(b) > end(a) ? b : a);
		const granting = all.filter((p) => grants(p, now));
		return granting.length > 0 ? granting.reduce(latest) : all.reduce(latest, presented);
	}

	/**
	 * Gives the unit a new owner (or none, for a support revocation), audited. Every transaction's D1 row names the
	 * owner, so all of them are written again; what still needs acknowledging is acknowledged now someone owns it.
	 */
	#changeOwner(toUserId: string | null, change: { action: OwnershipAction; actor: string; reason: string | null; transactionId: string }): void {
		const unit = this.#unit()!;
		const at = Date.now();
		this.#audit(change.action, toUserId, change);
		this.#sql.exec(`UPDATE unit SET user_id = ?, revoked = ? WHERE id = 1`, toUserId, change.action === "revoke" ? 1 : 0);
		this.#sql.exec(`UPDATE txn SET version = version + 1`);
		if (change.action !== "claim") {
			const purchase = this.#standing(change.transactionId, unit.subscription === 1, at);
			this.#emit("ownership.transferred", purchase, { fromUserId: unit.user_id, toUserId, action: change.action, reason: change.reason });
		}
		if (toUserId !== null) this.#sql.exec(`UPDATE txn SET ack_state = 'pending' WHERE ack_state = 'none' AND json_extract(purchase, '$.needsAcknowledgement') = 1`);
	}

	/** An audit entry, written to D1's ownership_audit at the next #sync (with the rows it concerns). */
	#audit(action: OwnershipAction, toUserId: string | null, change: { actor: string; reason: string | null; transactionId: string; outcome?: string }): void {
		const unit = this.#unit()!;
		const entry: AuditEntry = {
			id: crypto.randomUUID(),
			store: unit.store as Store,
			claimId: unit.key,
			transactionId: change.transactionId,
			appId: unit.app_id,
			action,
			fromUserId: unit.user_id,
			toUserId,
			actor: change.actor,
			reason: change.reason,
			outcome: change.outcome ?? null,
			at: Date.now(),
		};
		this.#sql.exec(`INSERT INTO audit (id, entry) VALUES (?, ?)`, entry.id, JSON.stringify(entry));
	}

	/**
	 * Stores a transaction's new state and, in the same step, the events it makes (src/events/transitions.ts) in the
	 * outbox: what is reported is exactly what was stored. D1 gets the state at the next #settle (or from the alarm);
	 * the outbox is handed on after that (#dispatch).
	 */
	#put(purchase: Purchase, now: number): void {
		const unit = this.#unit()!;
		const row = this.#txn(purchase.transactionId);
		const before = row ? (row.observed ? (JSON.parse(row.observed) as Observed) : observe(readPurchase(row.purchase), now)) : undefined;
		const latestBefore = row || unit.subscription === 0 ? undefined : this.#latestObserved(now);
		this.#write(purchase);
		const after = observe(purchase, now);
		this.#sql.exec(`UPDATE txn SET observed = ? WHERE transaction_id = ?`, JSON.stringify(after), purchase.transactionId);
		for (const type of transitions(before, after, purchase.kind, latestBefore)) this.#emit(type, purchase);
	}

	/** The subscription's latest transaction as last reported, before a new one joins it. */
	#latestObserved(now: number): Observed | undefined {
		const all = this.#txns().map((r) => (r.observed ? (JSON.parse(r.observed) as Observed) : observe(readPurchase(r.purchase), now)));
		return all.reduce<Observed | undefined>((a, b) => (a === undefined || (b.expiresAt ?? 0) > (a.expiresAt ?? 0) ? b : a), undefined);
	}

	/** Puts an event in the outbox, in the same step as the change it reports. */
	#emit(type: EventType, purchase: Purchase, ownership?: ServiceEvent["ownership"]): void {
		const unit = this.#unit()!;
		this.#sql.exec(`UPDATE unit SET events = events + 1 WHERE id = 1`);
		const event: ServiceEvent = {
			id: crypto.randomUUID(),
			type,
			at: Date.now(),
			appId: unit.app_id,
			userId: unit.user_id,
			store: unit.store as Store,
			claim: unit.key,
			sequence: unit.events + 1,
			purchase: viewOf(purchase, unit.user_id),
			...(ownership ? { ownership } : {}),
		};
		this.#sql.exec(`INSERT INTO outbox (id, event) VALUES (?, ?)`, event.id, JSON.stringify(event));
	}

	/** Stores a transaction's new state; D1 gets it at the next #settle (or from the alarm). */
	#write(purchase: Purchase): void {
		this.#sql.exec(
			`INSERT INTO txn (transaction_id, purchase, ack_state) VALUES (?, ?, 'none')
			 ON CONFLICT (transaction_id) DO UPDATE SET purchase = excluded.purchase, version = version + 1`,
			purchase.transactionId,
			JSON.stringify(purchase),
		);
	}

	/** Brings D1 up to date now, and leaves the rest to the alarm: a failed write, an acknowledgement to send, an expiry to report. */
	async #settle(): Promise<HistoryWrite> {
		const history = await this.#sync();
		const ackPending = this.#txns().some((r) => r.ack_state === "pending");
		if (history !== "recorded" || ackPending) await this.#scheduleRetry(history === "recorded" ? 0 : FIRST_RETRY_MS);
		await this.#watchLapse();
		// Events go out once D1 holds what they report, and without the caller waiting for them.
		if (history === "recorded") this.ctx.waitUntil(this.#dispatch());
		return history;
	}

	/**
	 * Hands the outbox on: each event to the live channel of the user it concerns (and of the user a transfer took
	 * it from), and to the queue that delivers webhooks. An event leaves the outbox once both have it; whatever is
	 * left is retried from the alarm. Channels and webhook receivers see an event at least once, by its id.
	 */
	#dispatch(): Promise<void> {
		// Events written while a hand-over is under way are taken by that same hand-over, in a later round.
		this.#dispatchAgain = true;
		this.#dispatching ??= (async () => {
			while (this.#dispatchAgain) {
				this.#dispatchAgain = false;
				if (!(await this.#dispatchRound())) {
					await this.#scheduleRetry(FIRST_RETRY_MS);
					return;
				}
			}
		})().finally(() => {
			this.#dispatching = undefined;
		});
		return this.#dispatching;
	}

	/** One round of #dispatch; false when something could not be handed on (the alarm retries it). */
	async #dispatchRound(): Promise<boolean> {
		{
			const rows = this.#sql
				.exec<{ id: string; event: string; published: number; queued: number; recorded: number }>(`SELECT id, event, published, queued, recorded FROM outbox ORDER BY rowid LIMIT 50`)
				.toArray();
			if (rows.length === 0) return true;
			const log = createLogger("claim:dispatch");
			const events = rows.map((r) => ({ row: r, event: JSON.parse(r.event) as ServiceEvent }));
			const unpublished = events.filter((e) => e.row.published === 0);
			const byUser = new Map<string, ServiceEvent[]>();
			for (const { event } of unpublished) {
				for (const user of new Set([event.userId, event.ownership?.fromUserId].filter((u): u is string => typeof u === "string"))) {
					byUser.set(user, [...(byUser.get(user) ?? []), event]);
				}
			}
			const unqueued = events.filter((e) => e.row.queued === 0);
			const appId = this.#unit()!.app_id;
			// Both at once, and what each took recorded in one write.
			const [published, queued] = await Promise.allSettled([
				Promise.all([...byUser].map(([user, list]) => this.env.CHANNELS.get(this.env.CHANNELS.idFromName(channelName(appId, user))).publish(appId, user, list))),
				unqueued.length > 0
					? this.env.EVENTS.sendBatch(unqueued.map(({ row, event }) => ({ body: { kind: "event", event, recorded: row.recorded === 1 } satisfies EventMessage, contentType: "json" as const })))
					: undefined,
			]);
			if (published.status === "rejected") log.warn("events_not_published", { count: unpublished.length, error: published.reason });
			if (queued.status === "rejected") log.warn("events_not_queued", { count: unqueued.length, error: queued.reason });
			let handedOn = 0;
			for (const { row } of events) {
				const isPublished = row.published === 1 || published.status === "fulfilled";
				const isQueued = row.queued === 1 || queued.status === "fulfilled";
				if (isPublished && isQueued) handedOn += this.#sql.exec(`DELETE FROM outbox WHERE id = ?`, row.id).rowsWritten;
				else this.#sql.exec(`UPDATE outbox SET published = ?, queued = ? WHERE id = ?`, isPublished ? 1 : 0, isQueued ? 1 : 0, row.id);
			}
			const left = this.#sql.exec(`SELECT 1 FROM outbox LIMIT 1`).toArray().length > 0;
			// More than one round's worth: go on; nothing handed on this round: leave it to the alarm.
			if (left && handedOn > 0) this.#dispatchAgain = true;
			return !left || handedOn > 0;
		}
	}

	/** Writes every transaction D1 does not have in its latest state, in one batch, one batch at a time. */
	#sync(): Promise<HistoryWrite> {
		const run = this.#writing.then(async (): Promise<HistoryWrite> => {
			const unit = this.#unit();
			const stale = this.#txns().filter((row) => row.synced_version < row.version);
			const audits = this.#sql.exec<{ id: string; entry: string }>(`SELECT id, entry FROM audit`).toArray();
			if (!unit || (stale.length === 0 && audits.length === 0)) return "recorded";
			// The events these changes made go with them: a purchase's timeline and the daily counts never lag (or
			// miss) the purchase. Events with nothing to write beside them are left to the queue's consumer.
			const events = this.#sql.exec<{ id: string; event: string }>(`SELECT id, event FROM outbox WHERE recorded = 0`).toArray();
			// Written through a session so its bookmark can be handed to the caller, who then reads its own write from
			// any replica (see src/http/session.ts).
			const db = this.env.DB.withSession("first-primary");
			try {
				// One batch: a purchase's rows and the ownership change that rewrote them land together.
				await withSchema(() =>
					db.batch([
						...stale.map((row) => purchaseWrite(db, { purchase: readPurchase(row.purchase), userId: unit.user_id })),
						...audits.map((a) => auditWrite(db, JSON.parse(a.entry) as AuditEntry)),
						...events.flatMap((e) => eventWrites(db, JSON.parse(e.event) as ServiceEvent)),
					]),
				);
			} catch (err) {
				createLogger(`claim:${unit.store}`).error("history_write_failed", { error: err });
				return d1Failure(err);
			}
			for (const row of stale) {
				// Only what was written: a change made while D1 was answering waits for the next write.
				this.#sql.exec(`UPDATE txn SET synced_version = ? WHERE transaction_id = ? AND version = ?`, row.version, row.transaction_id, row.version);
			}
			// D1 has them now: the object keeps only what D1 does not.
			for (const a of audits) this.#sql.exec(`DELETE FROM audit WHERE id = ?`, a.id);
			for (const e of events) this.#sql.exec(`UPDATE outbox SET recorded = 1 WHERE id = ?`, e.id);
			this.#bookmark = db.getBookmark() ?? this.#bookmark;
			return "recorded";
		});
		this.#writing = run.catch(() => undefined);
		return run;
	}

	/** The subscription's transaction that decides its state now (see #standing), if the unit is a subscription. */
	#standingRow(now: number): { row: TxnRow; purchase: Purchase } | undefined {
		const unit = this.#unit();
		const any = this.#sql.exec<{ transaction_id: string }>(`SELECT transaction_id FROM txn LIMIT 1`).toArray()[0];
		if (!unit || unit.subscription === 0 || !any) return undefined;
		const purchase = this.#standing(any.transaction_id, true, now);
		return { row: this.#txn(purchase.transactionId)!, purchase };
	}

	/** When time alone will next change the subscription's state (its expiry, or the end of its grace period). */
	#nextLapse(now: number): number | undefined {
		const standing = this.#standingRow(now);
		if (!standing) return undefined;
		const { state, expiresAt, graceExpiresAt } = standing.purchase;
		const at = state === "active" || state === "canceled" ? expiresAt : state === "in_grace_period" ? (graceExpiresAt ?? expiresAt) : null;
		return at !== null && at > now ? at : undefined;
	}

	/** Wakes the object when the subscription lapses, unless it wakes earlier anyway. */
	async #watchLapse(): Promise<void> {
		const at = this.#nextLapse(Date.now());
		if (at !== undefined) await this.#scheduleRetry(at + LAPSE_MARGIN_MS - Date.now());
	}

	/**
	 * Reports what time alone changed since the subscription's state was last reported: expired (or on hold, once a
	 * grace period ends). Events only: the history already answers by time (currentState), and D1's row is unchanged.
	 */
	#observeLapse(now: number): void {
		const standing = this.#standingRow(now);
		if (!standing?.row.observed) return;
		const before = JSON.parse(standing.row.observed) as Observed;
		const after = observe(standing.purchase, now);
		if (after.state === before.state) return;
		this.#sql.exec(`UPDATE txn SET observed = ? WHERE transaction_id = ?`, JSON.stringify(after), standing.purchase.transactionId);
		for (const type of transitions(before, after, standing.purchase.kind)) this.#emit(type, standing.purchase);
	}

	async #scheduleRetry(delayMs: number): Promise<void> {
		const at = Date.now() + delayMs;
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > at) await this.ctx.storage.setAlarm(at);
	}

	#seen(notificationId: string): boolean {
		return this.#sql.exec(`SELECT 1 FROM seen_notification WHERE id = ?`, notificationId).toArray().length > 0;
	}

	#unit(): UnitRow | undefined {
		return this.#sql.exec<UnitRow>(`SELECT * FROM unit WHERE id = 1`).toArray()[0];
	}

	#txn(transactionId: string): TxnRow | undefined {
		return this.#sql.exec<TxnRow>(`SELECT * FROM txn WHERE transaction_id = ?`, transactionId).toArray()[0];
	}

	#txns(): TxnRow[] {
		return this.#sql.exec<TxnRow>(`SELECT * FROM txn`).toArray();
	}

	#migrate(): void {
		this.#sql.exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
		const version = this.#sql.exec<{ version: number }>(`SELECT version FROM schema_version`).toArray()[0]?.version ?? 0;
		if (version === VERSION) return;
		if (version === 0) {
			// A new object: today's schema at once, not every version it never had.
			this.#sql.exec(SCHEMA);
			this.#sql.exec(`INSERT INTO schema_version (version) VALUES (?)`, VERSION);
			return;
		}
		for (let v = version; v < VERSION; v++) this.#sql.exec(UPGRADES[v - 1]!);
		this.#sql.exec(`UPDATE schema_version SET version = ?`, VERSION);
	}
}
