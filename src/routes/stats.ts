import { Hono } from "hono";
import type { ApiEnv } from "../http/auth";
import { upstreamReport } from "../quota/stats";

/**
 * GET /v1/stats/upstream (API key): how the app spends each store's request quota: per bucket its limit, the calls
 * made, those saved (answered from the ledger, coalesced, negative cache), 429s received, waits and 503s, over the
 * last minute, hour and day. See README "Store quotas".
 */
export const statsRoutes = new Hono<ApiEnv>().get("/upstream", async (c) => {
	const app = c.get("app");
	return c.json({ app_id: app.id, at: Date.now(), buckets: await upstreamReport(app) });
});
