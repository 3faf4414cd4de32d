import type { Context, Next } from "hono";
import { recordCall } from "./calls";
import { configOf } from "./config";
import { takeFault } from "./faults";
import { configureLimits, overLimit, quotaExceeded } from "./limits";

/**
 * Wraps a store endpoint: answers the store's 429 when a request limit is reached (limits.ts), applies an injected
 * generic fault when one matches, and records the call with the status it finally answered. `subjectOf` says what the call is about, for faults and for counting (default: the path).
 */
export function storeEndpoint(endpoint: string, subjectOf: (c: Context) => string | Promise<string> = (c) => new URL(c.req.url).pathname) {
	return async (c: Context, next: Next) => {
		const subject = await subjectOf(c);
		const config = configOf(c);
		configureLimits(JSON.stringify(config.limits), config.limits);
		const limited = overLimit(c, endpoint, subject);
		if (limited) {
			recordCall(endpoint, subject, limited.status);
			return limited;
		}
		const fault = takeFault(subject, ["http_error", "slow", "garbage"]);
		if (fault?.kind === "slow") await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
		if (fault?.kind === "http_error" && fault.status === 429) {
			// A store's 429 is always its quota answer, in its own format and with its own Retry-After (limits.ts).
			const throttled = quotaExceeded(c, endpoint, 1_000);
			recordCall(endpoint, subject, 429);
			return throttled;
		}
		if (fault?.kind === "http_error") {
			recordCall(endpoint, subject, fault.status);
			return c.json({ error: { code: fault.status, message: "Injected fault.", status: "INTERNAL" } }, fault.status as 500);
		}
		if (fault?.kind === "garbage") {
			recordCall(endpoint, subject, 200);
			return c.body("<html>definitely not json", 200, { "content-type": "application/json" });
		}
		await next();
		recordCall(endpoint, subject, c.res.status);
	};
}
