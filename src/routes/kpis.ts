import { Hono } from "hono";
import * as z from "zod";
import { requireApiKey, type ApiEnv } from "../http/auth";
import { answerBookmark, readSession } from "../http/session";
import { queryOf } from "../http/validate";
import { kpiReport, MAX_KPI_DAYS } from "../ledger/kpis";
import { describe } from "../openapi/describe";
import { KpiReportSchema } from "../openapi/schemas";
import { STORES } from "../purchase";

/**
 * GET /v1/kpis: the app's numbers by day (UTC), from the daily counts and the history's active_until index; what the
 * console's KPI page draws.
 */

const DAY = 86_400_000;
const date = z.iso.date({ error: "must be a date, YYYY-MM-DD" });

export const KpiQuery = z
	.object({
		from: date.optional().describe("First day (UTC), default 29 days before `to`."),
		to: date.optional().describe("Last day (UTC), default today."),
		environment: z.enum(["Production", "Sandbox"], { error: 'must be "Production" or "Sandbox"' }).default("Production"),
		store: z.enum(STORES, { error: `must be one of ${STORES.map((s) => `"${s}"`).join(", ")}` }).optional().describe("One store; every store when left out."),
	})
	.transform((q, ctx) => {
		const to = q.to ?? new Date().toISOString().slice(0, 10);
		const from = q.from ?? new Date(Date.parse(to) - 29 * DAY).toISOString().slice(0, 10);
		const days = (Date.parse(to) - Date.parse(from)) / DAY + 1;
		if (days < 1) ctx.addIssue({ code: "custom", path: ["from"], message: "must not be after `to`" });
		else if (days > MAX_KPI_DAYS) ctx.addIssue({ code: "custom", path: ["from"], message: `at most ${MAX_KPI_DAYS} days from \`to\`` });
		return { ...q, from, to };
	});

export const kpiRoutes = new Hono<ApiEnv>().get("/", describe({
	summary: "The app's numbers by day",
	description:
		"New purchases, renewals, refunds and revocations, refusals by code (`owned_by_another_user`: sharing attempts), gross revenue and refunds by currency (where the store states prices), and the claimed subscriptions giving access at the end of each day.",
	tags: ["KPIs"],
	security: ["apiKey"],
	responses: { 200: { description: "One entry per day, and totals", schema: KpiReportSchema } },
	errors: [400, 401, 429, 503],
}), requireApiKey, queryOf(KpiQuery), async (c) => {
	const query = c.req.valid("query");
	const session = readSession(c);
	const report = await kpiReport(session, { appId: c.get("app").id, ...query });
	answerBookmark(c, session);
	return c.json(report);
});
