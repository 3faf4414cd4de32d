import { Hono } from "hono";
import { appleAdmin } from "./apple-admin";
import { calls } from "./calls";
import { addFault } from "./faults";
import { expireAllTokens } from "./google-auth";
import { clientPurchaseJson, createGooglePurchase, googlePurchases, type CreateGooglePurchase } from "./google-purchases";

/**
 * The emulator's own API, for tests and the README walkthrough. Not part of any store.
 *   POST /_emulator/google/purchases         create a purchase; answers its token and the app-side JSON
 *   GET  /_emulator/google/purchases/:token  what the emulator holds (acknowledged, consumed, ...)
 *   POST /_emulator/faults                   {match, mode: error|slow|garbage, status?, delayMs?, times?}
 *   GET  /_emulator/calls?match=&endpoint=   the calls received, newest last
 *   POST /_emulator/google/expire-tokens     every access token issued so far expires now
 *   /_emulator/apple/...                     App Store transactions and coded errors: see apple-admin.ts
 */
export const admin = new Hono();

admin.post("/google/purchases", async (c) => {
	const body = (await c.req.json().catch(() => null)) as CreateGooglePurchase | null;
	if (!body || typeof body.packageName !== "string" || typeof body.productId !== "string") {
		return c.json({ error: "packageName and productId are required" }, 400);
	}
	const created = createGooglePurchase(body);
	if (typeof created === "string") return c.json({ error: created }, 400);
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
	const patch = (await c.req.json().catch(() => ({}))) as Partial<{ state: string; expiresInSeconds: number; acknowledged: boolean }>;
	if (patch.state !== undefined) purchase.state = patch.state;
	if (patch.expiresInSeconds !== undefined) purchase.expiryTime = Date.now() + patch.expiresInSeconds * 1000;
	if (patch.acknowledged !== undefined) purchase.acknowledged = patch.acknowledged;
	return c.json(purchase);
});

admin.post("/faults", async (c) => {
	const body = (await c.req.json().catch(() => null)) as { match?: string; mode?: "error" | "slow" | "garbage"; status?: number; delayMs?: number; times?: number } | null;
	if (!body?.match || !body.mode || !["error", "slow", "garbage"].includes(body.mode)) {
		return c.json({ error: "match and mode (error | slow | garbage) are required" }, 400);
	}
	const { mode, status = 500, delayMs = 5_000 } = body;
	addFault(body.match, mode === "error" ? { kind: "http_error", status } : mode === "slow" ? { kind: "slow", delayMs } : { kind: "garbage" }, body.times ?? 1);
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
