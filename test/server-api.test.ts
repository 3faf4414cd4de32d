import { describe, expect, it } from "vitest";
import { SAMPLE_APP, TEST_APPS } from "./support/fixtures.ts";
import { bearer, call, emulator, json, uniqueUser } from "./support/service.ts";

/** The server API: /v1/purchases/validate, /v1/purchases/consume and /v1/users/{id}/purchases. */

function validate(body: Record<string, unknown>, headers = bearer()) {
	return call("POST", "/v1/purchases/validate", body, headers);
}

describe("POST /v1/purchases/validate", () => {
	it("answers Nakama's fields with the normalized purchase and Google's raw answer", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const userId = uniqueUser();
		const response = await validate({ store: "google_play", userId, productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		expect(response.status).toBe(200);
		const body = await json(response);
		expect(body).toMatchObject({
			success: true,
			seen_before: false,
			purchase_provider_reachable: true,
			purchase: { store: "google_play", transactionId: purchase.purchaseToken, productId: "premium_lifetime", userId, environment: "Production", state: "active" },
			data: { kind: "androidpublisher#productPurchase", orderId: purchase.orderId },
		});
		expect(body.purchase).not.toHaveProperty("raw");
	});

	it("says seen_before for the same user's second validation", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const body = { store: "google_play", userId: uniqueUser(), productId: "premium_monthly", purchaseToken: purchase.purchaseToken, type: "subscription" };
		expect((await json(await validate(body))).seen_before).toBe(false);
		expect(await json(await validate(body))).toMatchObject({ success: true, seen_before: true });
	});

	it("refuses another user's purchase with a reason, still reachable", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await validate({ store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		const response = await validate({ store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		expect(response.status).toBe(200);
		expect(await json(response)).toMatchObject({ success: false, purchase_provider_reachable: true, code: "owned_by_another_user", purchase: null });
	});

	it("records in the history that a granted subscription has since expired, when Google says so", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true });
		const userId = uniqueUser();
		const body = { store: "google_play", userId, productId: "premium_monthly", purchaseToken: purchase.purchaseToken };
		expect((await json(await validate(body))).success).toBe(true);
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -60 });
		// The notification is held: a fresh answer is asked for, as a backend that doubts the ledger would.
		expect(await json(await validate({ ...body, fresh: true }))).toMatchObject({ success: false, code: "expired" });
		const history = await json(await call("GET", `/v1/users/${userId}/purchases`, undefined, bearer()));
		expect(history.purchases).toEqual([expect.objectContaining({ transactionId: purchase.purchaseToken, state: "expired", entitled: false })]);
	});

	it("leaves the history alone when a refusal says nothing about an existing purchase", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const owner = uniqueUser();
		await validate({ store: "google_play", userId: owner, productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		expect((await json(await validate({ store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken }))).code).toBe("owned_by_another_user");
		const history = await json(await call("GET", `/v1/users/${owner}/purchases`, undefined, bearer()));
		expect(history.purchases[0]).toMatchObject({ state: "active", entitled: true });
	});

	it("answers 503 with purchase_provider_reachable false when Google is down", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await emulator.fault({ match: purchase.purchaseToken, mode: "error", status: 502 });
		const response = await validate({ store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toBeTruthy();
		expect(await json(response)).toMatchObject({ success: false, purchase_provider_reachable: false, error: { code: "store_unreachable" } });
	});

	it("answers 401 without an API key, with a wrong one, and with another scheme", async () => {
		const body = { store: "google_play", userId: "u", productId: "p", purchaseToken: "t" };
		for (const headers of [{}, bearer("not-a-key-of-this-deployment"), { authorization: `Basic ${SAMPLE_APP.apiKey}` }]) {
			const response = await validate(body, headers);
			expect(response.status).toBe(401);
			const text = await response.text();
			expect(JSON.parse(text).error.code).toBe("unauthorized");
			expect(text).not.toContain("not-a-key-of-this-deployment");
		}
	});

	it.each([
		["store", { userId: "u", productId: "p", purchaseToken: "t" }],
		["store", { store: "samsung", userId: "u", productId: "p", purchaseToken: "t" }],
		["receiptId", { store: "amazon", userId: "u", productId: "p", purchaseToken: "t", amazonUserId: "a" }],
		["amazonUserId", { store: "amazon", userId: "u", productId: "p", receiptId: "r" }],
		["receiptId", { store: "amazon", userId: "u", productId: "p", receiptId: "has spaces", amazonUserId: "a" }],
		["userId", { store: "google_play", productId: "p", purchaseToken: "t" }],
		["productId", { store: "google_play", userId: "u", productId: "", purchaseToken: "t" }],
		["purchaseToken", { store: "google_play", userId: "u", productId: "p" }],
		["type", { store: "google_play", userId: "u", productId: "p", purchaseToken: "t", type: "bundle" }],
	])("answers 400 naming %s", async (field, body) => {
		const response = await validate(body);
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe(field);
	});

	it("validates with the app the key belongs to, not one the body names", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.sandbox.packageName });
		const body = { store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken, appId: TEST_APPS.sandbox.id };
		expect(await json(await validate(body))).toMatchObject({ success: false, code: "invalid_purchase" });
		expect(await json(await validate(body, bearer(TEST_APPS.sandbox.apiKey)))).toMatchObject({ success: true });
	});
});

describe("POST /v1/purchases/consume", () => {
	async function granted(productId: string, userId: string) {
		const purchase = await emulator.createGooglePurchase({ productId });
		const response = await validate({ store: "google_play", userId, productId, purchaseToken: purchase.purchaseToken });
		expect((await json(response)).success).toBe(true);
		return purchase;
	}

	it("consumes a granted consumable once, with Google", async () => {
		const userId = uniqueUser();
		const purchase = await granted("coins_100", userId);
		const body = { store: "google_play", userId, productId: "coins_100", purchaseToken: purchase.purchaseToken };
		expect(await json(await call("POST", "/v1/purchases/consume", body, bearer()))).toEqual({ consumed: true, seen_before: false });
		expect((await emulator.googlePurchase(purchase.purchaseToken)).consumed).toBe(true);
		expect(await json(await call("POST", "/v1/purchases/consume", body, bearer()))).toEqual({ consumed: true, seen_before: true });
		expect(await emulator.calls(purchase.purchaseToken, "google.products.consume")).toBe(1);
		const history = await json(await call("GET", `/v1/users/${userId}/purchases`, undefined, bearer()));
		expect(history.purchases[0]).toMatchObject({ transactionId: purchase.purchaseToken, state: "consumed" });
	});

	it("refuses to consume for anyone but the owner", async () => {
		const purchase = await granted("coins_100", uniqueUser());
		const response = await call("POST", "/v1/purchases/consume", { store: "google_play", userId: uniqueUser(), productId: "coins_100", purchaseToken: purchase.purchaseToken }, bearer());
		expect(response.status).toBe(409);
		expect((await emulator.googlePurchase(purchase.purchaseToken)).consumed).toBe(false);
	});

	it("refuses a purchase nobody validated, and a non-consumable", async () => {
		const unvalidated = await emulator.createGooglePurchase({ productId: "coins_100" });
		const first = await call("POST", "/v1/purchases/consume", { store: "google_play", userId: "u", productId: "coins_100", purchaseToken: unvalidated.purchaseToken }, bearer());
		expect(first.status).toBe(404);
		const userId = uniqueUser();
		const lifetime = await granted("premium_lifetime", userId);
		const second = await call("POST", "/v1/purchases/consume", { store: "google_play", userId, productId: "premium_lifetime", purchaseToken: lifetime.purchaseToken }, bearer());
		expect(second.status).toBe(409);
		expect((await json(second)).error.field).toBe("productId");
	});

	it("answers 503 and can be retried when Google fails to consume", async () => {
		const userId = uniqueUser();
		const purchase = await granted("coins_100", userId);
		await emulator.fault({ match: `${purchase.purchaseToken}:consume`, mode: "error", status: 500 });
		const body = { store: "google_play", userId, productId: "coins_100", purchaseToken: purchase.purchaseToken };
		expect((await call("POST", "/v1/purchases/consume", body, bearer())).status).toBe(503);
		expect(await json(await call("POST", "/v1/purchases/consume", body, bearer()))).toEqual({ consumed: true, seen_before: false });
	});
});

describe("GET /v1/users/{userId}/purchases", () => {
	it("lists a user's purchases newest first, a page at a time", async () => {
		const userId = uniqueUser();
		const tokens: string[] = [];
		for (const productId of ["coins_100", "premium_lifetime", "coins_100"]) {
			const purchase = await emulator.createGooglePurchase({ productId });
			tokens.push(purchase.purchaseToken);
			await validate({ store: "google_play", userId, productId, purchaseToken: purchase.purchaseToken });
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
		const first = await json(await call("GET", `/v1/users/${userId}/purchases?limit=2`, undefined, bearer()));
		expect(first.purchases.map((p: any) => p.transactionId)).toEqual([tokens[2], tokens[1]]);
		expect(first.purchases[0]).toMatchObject({ entitled: true, userId, appId: SAMPLE_APP.id });
		expect(first.next_cursor).toEqual(expect.any(String));
		const second = await json(await call("GET", `/v1/users/${userId}/purchases?limit=2&cursor=${first.next_cursor}`, undefined, bearer()));
		expect(second.purchases.map((p: any) => p.transactionId)).toEqual([tokens[0]]);
		expect(second.next_cursor).toBeNull();
	});

	it("shows one app's users only to that app's key", async () => {
		const userId = uniqueUser();
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await validate({ store: "google_play", userId, productId: "premium_lifetime", purchaseToken: purchase.purchaseToken });
		const other = await json(await call("GET", `/v1/users/${userId}/purchases`, undefined, bearer(TEST_APPS.sandbox.apiKey)));
		expect(other.purchases).toEqual([]);
	});

	it("answers 400 for a bad limit or cursor, 401 without a key", async () => {
		expect((await call("GET", "/v1/users/u/purchases?limit=0", undefined, bearer())).status).toBe(400);
		expect((await json(await call("GET", "/v1/users/u/purchases?limit=abc", undefined, bearer()))).error.field).toBe("limit");
		expect((await json(await call("GET", "/v1/users/u/purchases?cursor=zzz", undefined, bearer()))).error.field).toBe("cursor");
		expect((await call("GET", "/v1/users/u/purchases")).status).toBe(401);
	});
});
