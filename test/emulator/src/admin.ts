import { Hono } from "hono";
import * as z from "zod";
import { nonEmptyString, parseAdminBody, refuse, times } from "./admin-body";
import { appleAdmin } from "./apple-admin";
import { calls } from "./calls";
import { addFault } from "./faults";
import { expireAllTokens } from "./google-auth";
import { clientPurchaseJson, CreateGooglePurchase, createGooglePurchase, googlePurchases, statesFor, UpdateGooglePurchase } from "./google-purchases";
import { notificationAdmin } from "./notification-admin";

/**
 * The emulator's own API, for tests and the README walkthrough. Not part of any store. Bodies are parsed with zod
 * (admin-body.ts): a bad one answers 400 naming the field.
 *   POST /_emulator/google/purchases         create a purchase; answers its token and the app-side JSON
 *   GET  /_emulator/google/purchases/:token  what the emulator holds (acknowledged, consumed, ...)
 *   POST /_emulator/google/purchases/:token  {state?, expiresInSeconds?, acknowledged?}: change it later
 *   POST /_emulator/faults                   {match, mode: error|slow|garbage, status?, delayMs?, times?}
 *   GET  /_emulator/calls?match=&endpoint=   the calls received, newest last
 *   POST /_emulator/google/expire-tokens     every access token issued so far expires now
 *   /_emulator/apple/...                     App Store transactions, notifications and coded errors: see apple-admin.ts
 *   /_emulator/notifications, /outbox        every store notification and the deliveries due: see notification-admin.ts
 */
export const admin = new Hono();

admin.post("/google/purchases", async (c) => {
	const body = await parseAdminBody(c, CreateGooglePurchase);
	if (!body.ok) return body.response;
	const created = createGooglePurchase(body.value);
	return c.json(
		{
			purchaseToken: created.token,
			orderId: created.orderId,
			packageName: created.packageName,
			productId: created.productId,
			type: created.type,
			state: created.state,
			purchaseTime: created.purchaseTime,
			expiryTime: created.expiryTime,
			localVerificationData: clientPurchaseJson(created),
		},
		201,
	);
});

admin.get("/google/purchases/:token", (c) => {
	const purchase = googlePurchases.get(c.req.param("token"));
	return purchase ? c.json(purchase) : c.json({ error: "no such purchase" }, 404);
});

admin.post("/google/purchases/:token", async (c) => {
	const purchase = googlePurchases.get(c.req.param("token"));
	if (!purchase) return c.json({ error: "no such purchase" }, 404);
	const body = await parseAdminBody(c, UpdateGooglePurchase);
	if (!body.ok) return body.response;
	const patch = body.value;
	if (patch.state !== undefined && !statesFor(purchase.type).includes(patch.state)) {
		return refuse(c, "state", `must be one of ${statesFor(purchase.type).join(", ")} for a ${purchase.type}`);
	}
	if (patch.state !== undefined) purchase.state = patch.state;
	if (patch.expiresInSeconds !== undefined) purchase.expiryTime = Date.now() + patch.expiresInSeconds * 1000;
	if (patch.acknowledged !== undefined) purchase.acknowledged = patch.acknowledged;
	return c.json(purchase);
});

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

admin.get("/calls", (c) => {
	const match = c.req.query("match") ?? "";
	const endpoint = c.req.query("endpoint");
	const found = calls.filter((call) => call.subject.includes(match) && (endpoint === undefined || call.endpoint === endpoint));
	return c.json({ count: found.length, calls: found });
});

admin.post("/google/expire-tokens", (c) => c.json({ expired: expireAllTokens() }));

admin.route("/apple", appleAdmin);
admin.route("/", notificationAdmin);
