import { Hono } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, positiveWhole, times } from "./admin-body";
import { amazonAdmin } from "./amazon-admin";
import { appleAdmin } from "./apple-admin";
import { calls } from "./calls";
import { addFault } from "./faults";
import { BUCKETS, clearLimits, listLimits, setLimit } from "./limits";
import { googleAdmin } from "./google-admin";
import { notificationAdmin } from "./notification-admin";

/**
 * The emulator's own API, for tests and the README walkthrough. Not part of any store. Bodies are parsed with zod
 * (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /_emulator/faults                   {match, mode: error|slow|garbage, status?, delayMs?, times?}
 *   GET  /_emulator/calls?match=&endpoint=   the calls received, newest last
 *   POST /_emulator/limits                   {bucket, limit, periodSeconds, match?}: the store's request limit (limits.ts)
 *   GET  /_emulator/limits, DELETE /_emulator/limits   the limits in force (and calls in their window); none
 *   /_emulator/google/...                    Google Play purchases and notifications: see google-admin.ts
 *   /_emulator/apple/...                     App Store transactions, notifications and coded errors: see apple-admin.ts
 *   /_emulator/amazon/...                    Amazon Appstore receipts, Real-time Notifications, SNS: see amazon-admin.ts
 *   /_emulator/notifications, /outbox        every store notification and the deliveries due: see notification-admin.ts
 */
export const admin = new Hono();

const STATUS = "must be an HTTP status from 200 to 599";
const DELAY = "must be a whole number of milliseconds from 0 to 60000";

/** POST /_emulator/faults: the next `times` store calls whose subject contains `match` fail that way. */
const FaultBody = z.object({
	match: nonEmptyString,
	mode: z.enum(["error", "slow", "garbage"], { error: 'must be "error", "slow" or "garbage"' }),
	/** For "error": the HTTP status to answer. */
	status: z.number({ error: STATUS }).int({ error: STATUS }).min(200, { error: STATUS }).max(599, { error: STATUS }).default(500),
	/** For "slow": how long to wait before answering normally. */
	delayMs: z.number({ error: DELAY }).int({ error: DELAY }).min(0, { error: DELAY }).max(60_000, { error: DELAY }).default(5_000),
	times,
});

admin.post("/faults", async (c) => {
	const body = await parseAdminBody(c, FaultBody);
	if (!body.ok) return body.response;
	const { match, mode, status, delayMs } = body.value;
	addFault(match, mode === "error" ? { kind: "http_error", status } : mode === "slow" ? { kind: "slow", delayMs } : { kind: "garbage" }, body.value.times);
	return c.json({ ok: true }, 201);
});

/** POST /_emulator/limits: at most `limit` calls of `bucket` in any `periodSeconds`, then the store's 429. */
const LimitBody = z.object({
	bucket: z.enum(Object.keys(BUCKETS) as [string, ...string[]], { error: `must be one of ${Object.keys(BUCKETS).join(", ")}` }),
	limit: positiveWhole,
	periodSeconds: positiveWhole,
	match: z.string().default(""),
});

admin.post("/limits", async (c) => {
	const body = await parseAdminBody(c, LimitBody);
	if (!body.ok) return body.response;
	setLimit(body.value);
	return c.json({ limits: listLimits() }, 201);
});

admin.get("/limits", (c) => c.json({ limits: listLimits() }));

admin.delete("/limits", (c) => {
	clearLimits();
	return c.json({ limits: [] });
});

admin.get("/calls", (c) => {
	const match = c.req.query("match") ?? "";
	const endpoint = c.req.query("endpoint");
	const found = calls.filter((call) => call.subject.includes(match) && (endpoint === undefined || call.endpoint === endpoint));
	return c.json({ count: found.length, calls: found });
});

admin.route("/google", googleAdmin);
admin.route("/apple", appleAdmin);
admin.route("/amazon", amazonAdmin);
admin.route("/", notificationAdmin);
