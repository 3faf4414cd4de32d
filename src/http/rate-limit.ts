import { ApiError } from "./errors";

/**
 * The period of the limits in wrangler.toml. The binding does not say when a key may try again, so callers are
 * told the whole period: never sooner than the limiter would allow.
 */
export const RATE_LIMIT_PERIOD_SECONDS = 60;

/**
 * Counts one request against `key` with a Cloudflare Rate Limiting binding; over the limit is a 429 with
 * Retry-After, answered before the request costs a store call. The binding counts per Cloudflare location.
 */
export async function enforceRateLimit(limiter: RateLimit, key: string, scope: string): Promise<void> {
	const { success } = await limiter.limit({ key });
	if (!success) {
		throw new ApiError("rate_limited", `too many requests ${scope}; retry after ${RATE_LIMIT_PERIOD_SECONDS} seconds`, { retryAfter: RATE_LIMIT_PERIOD_SECONDS });
	}
}
