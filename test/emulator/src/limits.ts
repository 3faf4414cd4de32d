import type { Context } from "hono";
import { appleError } from "./apple-errors";

/**
 * The stores' request limits, enforced as the stores do: per quota bucket (Google: Subscriptions, One-time Purchases;
 * Apple: per endpoint), at most `limit` calls in any `periodSeconds`, counted over a sliding window. A call beyond it
 * is answered with the store's own 429, and does not count:
 * - Google (https://developers.google.com/android-publisher/quotas): HTTP 429, the Google API error envelope with
 *   status RESOURCE_EXHAUSTED, reason rateLimitExceeded, and a google.rpc.RetryInfo detail (retryDelay "Ns"); the
 *   wait is also sent as Retry-After in seconds.
 * - Apple (https://developer.apple.com/documentation/appstoreserverapi/identifying-rate-limits): HTTP 429,
 *   {"errorCode": 4290000, "errorMessage": "Rate limit exceeded."}, Retry-After a UNIX time in milliseconds.
 * None by default; set with EMULATOR_CONFIG.limits or POST /_emulator/limits.
 */

export interface LimitSetting {
	/** e.g. "google.subscriptions", "apple.transactions" (see BUCKETS). */
	bucket: string;
	limit: number;
	periodSeconds: number;
	/** Only calls whose subject (the path) contains this; empty for all. */
	match: string;
}

/** The store endpoints (as calls.ts names them) each bucket covers. */
export const BUCKETS: Record<string, string[]> = {
	"google.subscriptions": ["google.subscriptionsv2.get", "google.subscriptions.acknowledge"],
	"google.one_time_purchases": ["google.products.get", "google.products.acknowledge", "google.products.consume"],
	"google.voided_purchases": ["google.voidedpurchases.list"],
	"apple.transactions": ["apple.transactions.get"],
	"apple.subscription_statuses": ["apple.subscriptions.get"],
	"apple.notification_history": ["apple.notifications.history"],
	"apple.verify_receipt": ["apple.verifyReceipt"],
};

const active: (LimitSetting & { hits: number[] })[] = [];
let fromConfig: string | undefined;

/** Takes the configured limits, once (and again if the configuration changes), beside any set through the admin API. */
export function configureLimits(raw: string, settings: LimitSetting[]): void {
	if (fromConfig === raw) return;
	fromConfig = raw;
	for (const s of settings) setLimit(s);
}

export function setLimit(setting: LimitSetting): void {
	const existing = active.findIndex((l) => l.bucket === setting.bucket && l.match === setting.match);
	if (existing >= 0) active.splice(existing, 1);
	active.push({ ...setting, hits: [] });
}

export function clearLimits(): void {
	active.length = 0;
}

export function listLimits(now = Date.now()): (LimitSetting & { inWindow: number })[] {
	return active.map(({ hits, ...s }) => ({ ...s, inWindow: hits.filter((t) => t > now - s.periodSeconds * 1000).length }));
}

/** The 429 for this call if a limit it falls under is reached; otherwise counts it and answers undefined. */
export function overLimit(c: Context, endpoint: string, subject: string, now = Date.now()): Response | undefined {
	const applicable = active.filter((l) => BUCKETS[l.bucket]?.includes(endpoint) && subject.includes(l.match));
	for (const l of applicable) {
		const since = now - l.periodSeconds * 1000;
		while (l.hits.length > 0 && l.hits[0]! <= since) l.hits.shift();
	}
	const full = applicable.find((l) => l.hits.length >= l.limit);
	if (full) {
		// Free again when the oldest call in the window leaves it.
		const retryAfterMs = Math.max(1, full.hits[0]! + full.periodSeconds * 1000 - now);
		return quotaExceeded(c, endpoint, retryAfterMs, full, now);
	}
	for (const l of applicable) l.hits.push(now);
	return undefined;
}

/** The store's 429 for `endpoint`, free again in `retryAfterMs`. */
export function quotaExceeded(c: Context, endpoint: string, retryAfterMs: number, limit?: LimitSetting, now = Date.now()): Response {
	if (endpoint.startsWith("apple.")) return appleError(c, 4290000, { "retry-after": String(now + retryAfterMs) });
	return googleQuotaError(c, limit?.periodSeconds ?? 60, retryAfterMs);
}

function googleQuotaError(c: Context, periodSeconds: number, retryAfterMs: number): Response {
	const seconds = Math.ceil(retryAfterMs / 1000);
	const per = periodSeconds === 60 ? "minute" : `${periodSeconds} seconds`;
	const message = `Quota exceeded for quota metric 'Queries' and limit 'Queries per ${per}' of service 'androidpublisher.googleapis.com' for consumer 'project_number:000000000000'.`;
	return c.json(
		{
			error: {
				code: 429,
				message,
				errors: [{ message, domain: "global", reason: "rateLimitExceeded" }],
				status: "RESOURCE_EXHAUSTED",
				details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${seconds}s` }],
			},
		},
		429,
		{ "retry-after": String(seconds) },
	);
}
