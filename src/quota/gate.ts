import { env } from "cloudflare:workers";
import { StoreUnreachable } from "../answers";
import type { QuotasConfig } from "../config/schema";
import { createLogger } from "../log";
import { bucketKey, definitionOf, type BucketRef } from "./buckets";
import type { LimitSpec, UpstreamLimiter } from "./limiter";
import { limiterName } from "./limiter";

/**
 * The way out to a store for every call that spends an app's quota: a turn from the bucket's limiter first (waiting
 * for it briefly, or answering 503 with the limiter's Retry-After), and a 429 from the store recorded there so that
 * no isolate calls the bucket again before the store allows. Store clients run each request through here.
 */

/** What a store client needs to spend an app's quota. */
export interface QuotaContext {
	appId: string;
	quotas: QuotasConfig;
}

type LimiterApi = Pick<UpstreamLimiter, "acquire" | "throttled" | "saved" | "stats">;

export function limiterStub(ref: BucketRef): LimiterApi {
	return env.UPSTREAM_LIMITER.get(env.UPSTREAM_LIMITER.idFromName(limiterName(ref))) as unknown as LimiterApi;
}

/** The bucket's limit for this app: its configured override, else the store's published one (Sandbox: its share). */
export function limitFor(quotas: QuotasConfig, ref: Omit<BucketRef, "appId">): LimitSpec {
	const definition = definitionOf(ref.store, ref.bucket);
	if (!definition) throw new Error(`no quota bucket ${bucketKey(ref.store, ref.bucket)}`);
	const configured = quotas.limits[bucketKey(ref.store, ref.bucket)];
	const base = configured ?? { limit: definition.limit, periodSeconds: definition.periodSeconds };
	const limit = ref.environment === "Sandbox" ? Math.max(1, Math.floor(base.limit * definition.sandboxShare)) : base.limit;
	const burst = Math.min(limit, configured?.burst ?? Math.max(1, Math.floor(limit / 10)));
	return { limit, periodSeconds: base.periodSeconds, burst };
}

/**
 * Runs one store request within the app's quota. Without a quota context (a client used on its own) it just runs.
 * If the limiter itself cannot be reached the call goes ahead: the store's own 429 still protects the quota, and an
 * outage of the limiter must not become an outage of verification.
 */
export async function withinQuota<T>(quota: QuotaContext | undefined, bucket: Omit<BucketRef, "appId">, call: () => Promise<T>): Promise<T> {
	if (!quota) return call();
	const ref: BucketRef = { ...bucket, appId: quota.appId };
	const spec = limitFor(quota.quotas, bucket);
	const log = createLogger(`upstream:${ref.store}`);
	const limiter = limiterStub(ref);
	let permit;
	try {
		permit = await limiter.acquire(ref, spec, quota.quotas.maxWaitMs);
	} catch (err) {
		log.error("limiter_unavailable", { app: ref.appId, bucket: ref.bucket, environment: ref.environment, error: err });
		permit = { granted: true as const, waitMs: 0 };
	}
	if (!permit.granted) {
		const retryAfterSeconds = Math.max(1, Math.ceil(permit.retryAfterMs / 1000));
		log.warn("upstream_limited", { app: ref.appId, bucket: ref.bucket, environment: ref.environment, reason: permit.reason, retry_after_s: retryAfterSeconds });
		const why =
			permit.reason === "store_throttled"
				? `${ref.store} asked this app to slow down (429) until ${new Date(Date.now() + permit.retryAfterMs).toISOString()}`
				: `this app's ${ref.bucket} quota (${spec.limit} calls per ${spec.periodSeconds} s) is in use`;
		throw new StoreUnreachable(ref.store, why, { retryAfterSeconds });
	}
	if (permit.waitMs > 0) {
		log.info("upstream_waited", { app: ref.appId, bucket: ref.bucket, environment: ref.environment, waited_ms: permit.waitMs });
		await new Promise((resolve) => setTimeout(resolve, permit.waitMs));
	}
	try {
		return await call();
	} catch (err) {
		if (err instanceof StoreUnreachable && err.options.throttled) {
			// The store's word on when to come back; without one, a whole period of the bucket.
			const retryAfterMs = (err.options.retryAfterSeconds ?? spec.periodSeconds) * 1000;
			await limiter.throttled(ref, retryAfterMs).catch((failure: unknown) => log.error("limiter_unavailable", { app: ref.appId, bucket: ref.bucket, error: failure }));
		}
		throw err;
	}
}
