import { Hono } from "hono";
import * as z from "zod";
import type { ApiEnv } from "../http/auth";
import { describe } from "../openapi/describe";
import { STORES } from "../purchase";
import { upstreamReport } from "../quota/stats";

/**
 * GET /v1/stats/upstream (API key): how the app spends each store's request quota: per bucket its limit, the calls
 * made, those saved (answered from the ledger, coalesced, negative cache), 429s received, waits and 503s, over the
 * last minute, hour and day. See README "Store quotas".
 */

const Counts = z.object({
	calls: z.number().int().describe("Calls made to the store"),
	waits: z.number().int().describe("Calls that waited for their turn"),
	waitedMs: z.number().int(),
	limited: z.number().int().describe("Verifications answered 503 by the limiter"),
	throttled: z.number().int().describe("429s the store answered"),
	savedState: z.number().int().describe("Verifications answered from the ledger"),
	savedCoalesced: z.number().int().describe("Verifications that shared a concurrent call"),
	savedNegativeCache: z.number().int().describe("Verifications of evidence the store had just said does not exist"),
});

const UpstreamReport = z.object({
	app_id: z.string(),
	at: z.number().int(),
	buckets: z.array(
		z.object({
			store: z.enum(STORES),
			bucket: z.string(),
			environment: z.enum(["Production", "Sandbox"]),
			covers: z.string(),
			limit: z.object({ limit: z.number().int(), periodSeconds: z.number().int(), burst: z.number().int() }),
			lastMinuteUse: z.number().describe("The last minute's calls as a share of what the limit allows in a minute"),
			lastHourCallsPerVerification: z.number().nullable(),
			blockedUntil: z.number().int().nullable().describe("Until when a store's 429 holds every call (ms since the epoch)"),
			nextTurnAt: z.number().int(),
			lastMinute: Counts,
			lastHour: Counts,
			lastDay: Counts,
		}),
	),
});

export const statsRoutes = new Hono<ApiEnv>().get(
	"/upstream",
	describe({
		summary: "How the app spends each store's request quota",
		description: "Per quota bucket the app can spend: its limit, the calls made and those saved (answered from the ledger, coalesced, negative cache), 429s received, waits and 503s, over the last minute, hour and day.",
		tags: ["Operations"],
		security: ["apiKey"],
		responses: { 200: { description: "One entry per bucket", schema: UpstreamReport } },
		errors: [401, 429, 503],
	}),
	async (c) => {
		const app = c.get("app");
		return c.json({ app_id: app.id, at: Date.now(), buckets: await upstreamReport(app) });
	},
);
