import type { Context, Next } from "hono";
import { recordCall } from "./calls";
import { takeFault } from "./faults";

/**
 * Wraps a store endpoint: applies an injected generic fault when one matches, and records the call with the status
 * it finally answered. `subjectOf` says what the call is about, for faults and for counting (default: the path).
 */
export function storeEndpoint(endpoint: string, subjectOf: (c: Context) => string | Promise<string> = (c) => new URL(c.req.url).pathname) {
	return async (c: Context, next: Next) => {
		const subject = await subjectOf(c);
		const fault = takeFault(subject, ["http_error", "slow", "garbage"]);
		if (fault?.kind === "slow") await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
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
