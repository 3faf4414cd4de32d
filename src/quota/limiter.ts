import { DurableObject } from "cloudflare:workers";
import { createLogger } from "../log";
import type { BucketRef } from "./buckets";

/**
 * One store quota bucket of one app, shared by every isolate in every location: a Durable Object per (app, store,
 * bucket, environment), named by limiterName. It holds a token bucket as a generic cell rate algorithm (GCRA): calls
 * are spaced `interval` apart, with up to `burst` at once after a quiet spell, so that no window of `periodSeconds`
 * ever holds more than `limit` calls. A caller is given a turn now, a turn in a moment (it waits, at most
 * `maxWaitMs`), or told when to come back; it never waits here, so the object is never held by a slow caller.
 *
 * When a store answers 429 anyway (its quota is shared with other systems, or is lower than configured), the time it
 * names is recorded and no isolate is given a turn before then.
 *
 * It also counts, per minute, what happened in the bucket (calls, waits, refusals, 429s, and the calls the
 * service saved by answering without the store), for GET /v1/stats/upstream and the logs.
 */

export interface LimitSpec {
	limit: number;
	periodSeconds: number;
	burst: number;
}

export type Permit =
	| { granted: true; waitMs: number }
	/** No turn within maxWaitMs: `retryAfterMs` is when one is free (or the store's block ends). */
	| { granted: false; retryAfterMs: number; reason: "limit" | "store_throttled" };

export type SavedKind = "state" | "coalesced" | "negative_cache";

export interface BucketCounts {
	/** Calls given a turn (made, or about to be). */
	calls: number;
	/** Of those, how many waited for it, and for how long in all. */
	waits: number;
	waitedMs: number;
	/** Verifications answered 503 because no turn was free in time. */
	limited: number;
	/** 429s (or quota errors) the store answered. */
	throttled: number;
	/** Calls not made: answered from the ledger, shared with a concurrent caller, or from the negative cache. */
	savedState: number;
	savedCoalesced: number;
	savedNegativeCache: number;
}

export interface BucketStats {
	spec: LimitSpec | null;
	/** When the store's last 429 lets calls go again (ms), if that is still ahead. */
	blockedUntil: number | null;
	/** When a call asked now would get its turn (ms); now or earlier means at once. */
	nextTurnAt: number;
	lastMinute: BucketCounts;
	lastHour: BucketCounts;
	lastDay: BucketCounts;
}

/** Spacing calls a little wider than the limit allows absorbs the jitter between a turn and the call reaching the store. */
const SAFETY = 1.02;
const MINUTE_MS = 60_000;
const KEEP_MINUTES = 24 * 60;

const COLUMNS = ["calls", "waits", "waited_ms", "limited", "throttled", "saved_state", "saved_coalesced", "saved_negative_cache"] as const;
type Column = (typeof COLUMNS)[number];

const SCHEMA = `
	CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY CHECK (id = 1), tat REAL NOT NULL, blocked_until INTEGER NOT NULL, spec TEXT);
	CREATE TABLE IF NOT EXISTS minute (minute INTEGER PRIMARY KEY, ${COLUMNS.map((c) => `${c} INTEGER NOT NULL DEFAULT 0`).join(", ")});
	INSERT OR IGNORE INTO bucket (id, tat, blocked_until) VALUES (1, 0, 0);
`;

/** The Durable Object name of a bucket's limiter. */
export function limiterName(ref: BucketRef): string {
	return JSON.stringify([ref.appId, ref.store, ref.bucket, ref.environment]);
}

export class UpstreamLimiter extends DurableObject<Env> {
	readonly #sql: SqlStorage;
	/** The minute whose counts were last written, to log each minute's summary once it is over. */
	#minute: number | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => {
			this.#sql.exec(SCHEMA);
		});
	}

	/** A turn for one store call, now or within maxWaitMs, or when to come back. */
	async acquire(ref: BucketRef, spec: LimitSpec, maxWaitMs: number): Promise<Permit> {
		const now = Date.now();
		const { tat, blocked_until: blockedUntil } = this.#state();
		const interval = intervalMs(spec);
		const tolerance = (Math.min(spec.burst, spec.limit) - 1) * interval;
		const turnAt = Math.max(now, tat - tolerance, blockedUntil);
		if (turnAt - now > maxWaitMs) {
			this.#count(ref, now, { limited: 1 });
			return { granted: false, retryAfterMs: Math.ceil(turnAt - now), reason: turnAt === blockedUntil ? "store_throttled" : "limit" };
		}
		this.#sql.exec(`UPDATE bucket SET tat = ?, spec = ? WHERE id = 1`, Math.max(tat, turnAt) + interval, JSON.stringify(spec));
		const waitMs = Math.ceil(turnAt - now);
		this.#count(ref, now, waitMs > 0 ? { calls: 1, waits: 1, waited_ms: waitMs } : { calls: 1 });
		return { granted: true, waitMs };
	}

	/** The store answered 429: nobody calls this bucket again before `retryAfterMs` from now. */
	async throttled(ref: BucketRef, retryAfterMs: number): Promise<void> {
		const now = Date.now();
		this.#sql.exec(`UPDATE bucket SET blocked_until = max(blocked_until, ?) WHERE id = 1`, Math.ceil(now + retryAfterMs));
		this.#count(ref, now, { throttled: 1 });
		createLogger(`limiter:${ref.store}`).warn("upstream_throttled", { ...logFields(ref), retry_after_ms: retryAfterMs });
	}

	/** Calls the service did not make, counted by the isolates that saved them. */
	async saved(ref: BucketRef, counts: Partial<Record<SavedKind, number>>): Promise<void> {
		this.#count(ref, Date.now(), {
			saved_state: counts.state ?? 0,
			saved_coalesced: counts.coalesced ?? 0,
			saved_negative_cache: counts.negative_cache ?? 0,
		});
	}

	async stats(): Promise<BucketStats> {
		const now = Date.now();
		const { tat, blocked_until: blockedUntil, spec: specText } = this.#state();
		const spec = specText ? (JSON.parse(specText) as LimitSpec) : null;
		const tolerance = spec ? (Math.min(spec.burst, spec.limit) - 1) * intervalMs(spec) : 0;
		const minute = Math.floor(now / MINUTE_MS);
		return {
			spec,
			blockedUntil: blockedUntil > now ? blockedUntil : null,
			nextTurnAt: Math.ceil(Math.max(now, tat - tolerance, blockedUntil)),
			lastMinute: this.#sum(minute - 1),
			lastHour: this.#sum(minute - 60),
			lastDay: this.#sum(minute - KEEP_MINUTES),
		};
	}

	#state(): { tat: number; blocked_until: number; spec: string | null } {
		return this.#sql.exec<{ tat: number; blocked_until: number; spec: string | null }>(`SELECT tat, blocked_until, spec FROM bucket WHERE id = 1`).one();
	}

	/** Adds to this minute's counts; the first write of a new minute logs the one before and forgets what is a day old. */
	#count(ref: BucketRef, now: number, add: Partial<Record<Column, number>>): void {
		const minute = Math.floor(now / MINUTE_MS);
		const columns = COLUMNS.filter((c) => (add[c] ?? 0) !== 0);
		if (columns.length > 0) {
			this.#sql.exec(
				`INSERT INTO minute (minute, ${columns.join(", ")}) VALUES (?, ${columns.map(() => "?").join(", ")})
				 ON CONFLICT (minute) DO UPDATE SET ${columns.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
				minute,
				...columns.map((c) => add[c]!),
			);
		}
		if (this.#minute !== undefined && this.#minute !== minute) {
			const done = this.#sum(this.#minute, this.#minute);
			createLogger(`limiter:${ref.store}`).info("upstream_minute", { ...logFields(ref), minute: new Date(this.#minute * MINUTE_MS).toISOString(), ...done });
			this.#sql.exec(`DELETE FROM minute WHERE minute < ?`, minute - KEEP_MINUTES);
		}
		this.#minute = minute;
	}

	/** The counts of the minutes from `from` to `to` (this one by default). */
	#sum(from: number, to = Number.MAX_SAFE_INTEGER): BucketCounts {
		const row = this.#sql
			.exec<Record<Column, number | null>>(`SELECT ${COLUMNS.map((c) => `sum(${c}) AS ${c}`).join(", ")} FROM minute WHERE minute >= ? AND minute <= ?`, from, to)
			.one();
		return {
			calls: row.calls ?? 0,
			waits: row.waits ?? 0,
			waitedMs: row.waited_ms ?? 0,
			limited: row.limited ?? 0,
			throttled: row.throttled ?? 0,
			savedState: row.saved_state ?? 0,
			savedCoalesced: row.saved_coalesced ?? 0,
			savedNegativeCache: row.saved_negative_cache ?? 0,
		};
	}
}

/**
 * Time between two calls once the burst is spent. A GCRA lets at most burst + floor(window / interval) calls into any
 * window; with the period spread over (limit - burst + 1) intervals, each a little wider, that is at most `limit`.
 */
function intervalMs(spec: LimitSpec): number {
	const burst = Math.min(spec.burst, spec.limit);
	return ((spec.periodSeconds * 1000) / (spec.limit - burst + 1)) * SAFETY;
}

function logFields(ref: BucketRef): Record<string, string> {
	return { app: ref.appId, store: ref.store, bucket: ref.bucket, environment: ref.environment };
}
