import type { Context, Next } from "hono";
import { recordCall, takeFault } from "./state";

/**
 * Wraps a store endpoint: applies an injected fault when one matches, and records the call with the status
 * it finally answered, so tests can count exactly what reached "the store".
 */
export function storeEndpoint(endpoint: string, subjectOf: (c: Context) => string | Promise<string> = (c) => new URL(c.req.url).pathname) {
	return async (c: Context, next: Next) => {
		const subject = await subjectOf(c);
		const fault = takeFault(subject);
		if (fault?.mode === "slow") await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
		if (fault?.mode === "error") {
			recordCall(endpoint, subject, fault.status);
			return c.json({ error: { code: fault.status, message: "Injected fault.", status: "INTERNAL" } }, fault.status as 500);
		}
		if (fault?.mode === "garbage") {
			recordCall(endpoint, subject, 200);
			return c.body("<html>definitely not json", 200, { "content-type": "application/json" });
		}
		await next();
		recordCall(endpoint, subject, c.res.status);
	};
}
