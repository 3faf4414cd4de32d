import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TEST_APPS } from "./support/fixtures.ts";
import { call, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";
import { findPurchase } from "../src/ledger/history";

/** POST /verify with source "google_play": the wrapper-app contract, verified against the Play emulator. */

async function verify(body: unknown) {
	const response = await call("POST", "/verify", body);
	return { status: response.status, body: await json(response), headers: response.headers };
}

describe("a valid one-time Google Play purchase", () => {
	it("completes for the user who bought it and is recorded in the history", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const user = uniqueUser();
		const { status, body } = await verify(googleVerifyBody(purchase, { userIdentifier: user }));
		expect(status).toBe(200);
		expect(body).toEqual({ complete_purchase: true });
		const row = await findPurchase(env.DB, "google_play", purchase.purchaseToken);
		expect(row).toMatchObject({ userId: user, productId: "premium_lifetime", kind: "non_consumable", environment: "Production", state: "active", orderId: purchase.orderId });
	});

	it("is marked consumable when the app's catalogue says so", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "coins_100" });
		expect((await verify(googleVerifyBody(purchase))).body.complete_purchase).toBe(true);
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.kind).toBe("consumable");
	});
});

describe("a valid Google Play subscription", () => {
	it("completes and is recorded with its expiry", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", expiresInSeconds: 3600 });
		const { status, body } = await verify(googleVerifyBody(purchase));
		expect(status).toBe(200);
		expect(body).toEqual({ complete_purchase: true });
		const row = await findPurchase(env.DB, "google_play", purchase.purchaseToken);
		expect(row).toMatchObject({ kind: "subscription", state: "active", expiresAt: purchase.expiryTime });
	});

	it("still completes when renewal was turned off but the period has not ended", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", state: "canceled" });
		expect((await verify(googleVerifyBody(purchase))).body).toEqual({ complete_purchase: true });
	});

	it("is refused once expired", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", state: "expired", expiresInSeconds: -60 });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "expired" });
	});

	it("is refused when its period has passed even if Google still says active", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", expiresInSeconds: -5 });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "expired" });
	});

	it("is refused while on hold for a failed payment", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", state: "on_hold" });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "inactive" });
	});
});

describe("a replayed Google Play token", () => {
	it("completes again for the same user (a restore) without a second history row", async () => {
		const user = uniqueUser();
		// Acknowledged already, so Google's answer does not change between the two calls.
		const acknowledged = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		expect((await verify(googleVerifyBody(acknowledged, { userIdentifier: user }))).body).toEqual({ complete_purchase: true });
		const written = await findPurchase(env.DB, "google_play", acknowledged.purchaseToken);
		await new Promise((resolve) => setTimeout(resolve, 5));
		expect((await verify(googleVerifyBody(acknowledged, { userIdentifier: user, status: "restored" }))).body).toEqual({ complete_purchase: true });
		const { results } = await env.DB.prepare("SELECT user_id, updated_at FROM purchases WHERE transaction_id = ?1").bind(acknowledged.purchaseToken).all();
		// One row, not rewritten: the claim knows D1 already holds exactly this answer.
		expect(results).toEqual([{ user_id: user, updated_at: written?.updatedAt }]);
	});

	it("is refused for a second user (receipt sharing), and the first user keeps it", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const owner = uniqueUser("owner");
		await verify(googleVerifyBody(purchase, { userIdentifier: owner }));
		const { status, body } = await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser("thief") }));
		expect(status).toBe(200);
		expect(body).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.userId).toBe(owner);
		expect((await verify(googleVerifyBody(purchase, { userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
	});
});

describe("a Google Play purchase that does not match the claim", () => {
	it("is refused when claimed as another product (Google does not know the token for it)", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "coins_100" });
		const body = googleVerifyBody(purchase, { productID: "premium_lifetime" });
		// The app's own JSON says coins_100: refused before asking Google.
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "product_mismatch" });
		// With JSON that lies too, Google is asked and says the token is not for that product.
		body.purchaseDetails.verificationData.localVerificationData = JSON.stringify({ ...JSON.parse(purchase.localVerificationData), productId: "premium_lifetime" });
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toBeNull();
	});

	it("is refused when the purchase JSON names another package", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const body = googleVerifyBody(purchase);
		body.purchaseDetails.verificationData.localVerificationData = JSON.stringify({ ...JSON.parse(purchase.localVerificationData), packageName: "com.other.app" });
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "app_mismatch" });
	});

	it("is refused when the token belongs to another app's package", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.keyed.packageName });
		const body = googleVerifyBody(purchase);
		body.purchaseDetails.verificationData.localVerificationData = "{}";
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
	});
});

describe("a Google Play purchase in a state that grants nothing", () => {
	it("is refused when canceled, and recorded as Google states it, owned by nobody", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", state: "canceled" });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "canceled" });
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toMatchObject({ state: "canceled", userId: null });
	});

	it("is refused while pending, and not recorded: it is no purchase yet", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", state: "pending" });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "pending" });
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toBeNull();
	});

	it("is refused for an unknown token (404) and a token Google no longer knows (410)", async () => {
		const known = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const unknown = { ...known, purchaseToken: `${known.purchaseToken}x`, localVerificationData: "{}" };
		expect((await verify(googleVerifyBody(unknown))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
		const gone = await emulator.createGooglePurchase({ productId: "premium_lifetime", gone: true });
		expect((await verify(googleVerifyBody(gone))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
	});
});

describe("a Google Play test purchase (license tester)", () => {
	it("is refused by an app that does not accept Sandbox purchases", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", test: true });
		expect((await verify(googleVerifyBody(purchase))).body).toMatchObject({ complete_purchase: false, code: "sandbox_not_accepted" });
	});

	it("completes for an app that accepts them, and stays marked Sandbox", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", test: true, packageName: TEST_APPS.sandbox.packageName });
		expect((await verify(googleVerifyBody(purchase, { appId: TEST_APPS.sandbox.id }))).body).toEqual({ complete_purchase: true });
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.environment).toBe("Sandbox");
	});
});

describe("when Google cannot give an answer", () => {
	it.each([
		["answers 500", { mode: "error", status: 500 }],
		["answers 503", { mode: "error", status: 503 }],
		["rate-limits with 429", { mode: "error", status: 429 }],
		["answers something that is not JSON", { mode: "garbage" }],
		["does not answer in time", { mode: "slow", delayMs: 3_000 }],
	] as const)("answers 503 with Retry-After when Google %s, never a false no", async (_, fault) => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await emulator.fault({ match: purchase.purchaseToken, ...fault });
		const { status, body, headers } = await verify(googleVerifyBody(purchase));
		expect(status).toBe(503);
		expect(body.error.code).toBe("store_unreachable");
		expect(body).not.toHaveProperty("complete_purchase");
		expect(Number(headers.get("retry-after"))).toBeGreaterThan(0);
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toBeNull();
		// A 429 holds every caller of the app's bucket until Google's Retry-After; once Google is back, the same request completes.
		if ("status" in fault && fault.status === 429) await new Promise((resolve) => setTimeout(resolve, Number(headers.get("retry-after")) * 1000));
		expect((await verify(googleVerifyBody(purchase))).body).toEqual({ complete_purchase: true });
	});
});

describe("when Google answers something that is about this deployment or this request, not the purchase", () => {
	it.each([
		[403, "misconfigured"],
		[401, "misconfigured"],
	] as const)("a %i to the API is this deployment's misconfiguration: 503 naming what to check, never a no", async (status, code) => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		// A 401 is retried once with a fresh token, so it must persist for both attempts to be reported.
		await emulator.fault({ match: purchase.purchaseToken, mode: "error", status, times: 2 });
		const { status: answered, body, headers } = await verify(googleVerifyBody(purchase));
		expect(answered).toBe(503);
		expect(body.error).toMatchObject({ code, message: expect.stringContaining("Play Console") });
		expect(Number(headers.get("retry-after"))).toBeGreaterThan(0);
	});

	it.each([414, 431])("a %i (the request too large for Google) is a 400 naming the token, not an outage", async (status) => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await emulator.fault({ match: purchase.purchaseToken, mode: "error", status });
		const { status: answered, body } = await verify(googleVerifyBody(purchase));
		expect(answered).toBe(400);
		expect(body.error).toMatchObject({ code: "invalid_request", field: "purchaseDetails.verificationData.serverVerificationData" });
	});

	it("a token longer than any Google issues is refused before Google is asked", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const long = { ...purchase, purchaseToken: "a".repeat(100_000) };
		const { status, body } = await verify(googleVerifyBody(long));
		expect(status).toBe(400);
		expect(body.error.field).toBe("purchaseDetails.verificationData.serverVerificationData");
		expect(await emulator.calls("a".repeat(64))).toBe(0);
	});
});
