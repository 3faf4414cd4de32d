import { describe, expect, it } from "vitest";
import { entitlementsOf, accessTo, type Owned } from "../src/entitlements";
import type { AppConfig } from "../src/config/schema";
import { APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody, testApp } from "./support/apple-service.ts";
import { TEST_APPS } from "./support/fixtures.ts";
import { bearer, call, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** "Does this user have access now?": entitlements computed from the history, one function deciding access. */

const NOW = Date.UTC(2026, 10, 22);
const DAY = 24 * 3600 * 1000;
const app = { ...testApp(APPLE_SAMPLE.appId), entitlements: { premium: ["premium_monthly", "premium_lifetime"], coins: ["coins_100"] } } as AppConfig;

function owned(p: Partial<Owned> & Pick<Owned, "productId">): Owned {
	return {
		store: "app_store",
		transactionId: crypto.randomUUID(),
		kind: p.productId === "premium_lifetime" ? "non_consumable" : p.productId === "coins_100" ? "consumable" : "subscription",
		environment: "Production",
		orderId: null,
		purchasedAt: NOW - 30 * DAY,
		expiresAt: null,
		graceExpiresAt: null,
		willRenew: null,
		state: "active",
		...p,
	};
}

const premium = (purchases: Owned[], a: AppConfig = app) => entitlementsOf(a, purchases, NOW).find((e) => e.id === "premium")!;

describe("an entitlement", () => {
	it("is granted for good by a lifetime purchase, even next to an expired subscription", () => {
		const lifetime = owned({ productId: "premium_lifetime" });
		const e = premium([owned({ productId: "premium_monthly", expiresAt: NOW - DAY }), lifetime]);
		expect(e).toMatchObject({ active: true, state: "active", expiresAt: null, productId: "premium_lifetime", purchase: { transactionId: lifetime.transactionId } });
	});

	it("is granted by the subscription that runs longest when there are two", () => {
		const later = owned({ productId: "premium_monthly", expiresAt: NOW + 20 * DAY, willRenew: true });
		const e = premium([owned({ productId: "premium_monthly", expiresAt: NOW + 5 * DAY }), later]);
		expect(e).toMatchObject({ active: true, state: "active", expiresAt: NOW + 20 * DAY, willRenew: true, purchase: { transactionId: later.transactionId } });
	});

	it("stays active through a billing grace period, until the grace ends", () => {
		const grace = owned({ productId: "premium_monthly", state: "in_grace_period", expiresAt: NOW - DAY, graceExpiresAt: NOW + 3 * DAY });
		expect(premium([grace])).toMatchObject({ active: true, state: "in_grace_period", expiresAt: NOW + 3 * DAY });
		expect(premium([{ ...grace, graceExpiresAt: NOW - 1 }])).toMatchObject({ active: false, state: "on_hold" });
	});

	it("says canceled_but_running for a subscription whose renewal is off, until it expires", () => {
		expect(premium([owned({ productId: "premium_monthly", state: "canceled", expiresAt: NOW + DAY, willRenew: false })])).toMatchObject({ active: true, state: "canceled_but_running", willRenew: false });
		expect(premium([owned({ productId: "premium_monthly", state: "canceled", expiresAt: NOW - DAY })])).toMatchObject({ active: false, state: "expired" });
	});

	it("is lost by a refund and by expiry, saying which", () => {
		expect(premium([owned({ productId: "premium_lifetime", state: "refunded" })])).toMatchObject({ active: false, state: "refunded", expiresAt: null });
		expect(premium([owned({ productId: "premium_monthly", expiresAt: NOW - DAY })])).toMatchObject({ active: false, state: "expired" });
		expect(premium([])).toMatchObject({ active: false, state: "never_purchased", purchase: null });
	});

	it("is never granted by a consumable, consumed or not", () => {
		const coins = entitlementsOf(app, [owned({ productId: "coins_100" }), owned({ productId: "coins_100", state: "consumed" })], NOW).find((e) => e.id === "coins")!;
		expect(coins).toMatchObject({ active: false, state: "never_purchased" });
	});

	it("counts Sandbox purchases only for an app that accepts them", () => {
		const sandbox = owned({ productId: "premium_lifetime", environment: "Sandbox" });
		expect(premium([sandbox], { ...app, acceptSandbox: false }).active).toBe(false);
		expect(premium([sandbox], { ...app, acceptSandbox: true }).active).toBe(true);
	});
});

describe("an access check", () => {
	it("answers by entitlement or by product", () => {
		const purchases = [owned({ productId: "premium_monthly", expiresAt: NOW + DAY })];
		expect(accessTo(app, "premium", purchases, NOW)).toMatchObject({ access: true, entitlement: "premium", productId: "premium_monthly", expiresAt: NOW + DAY });
		expect(accessTo(app, "premium_monthly", purchases, NOW)).toMatchObject({ access: true, entitlement: null });
		expect(accessTo(app, "premium_lifetime", purchases, NOW)).toMatchObject({ access: false, reason: "never_purchased", expiresAt: null });
	});
});

describe("GET /v1/users/{userId}/entitlements", () => {
	it("lists every entitlement of the app, granted by a verified purchase", async () => {
		const user = uniqueUser();
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", expiresInSeconds: 3600 });
		const granted = await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user }));
		expect((await json(granted)).complete_purchase).toBe(true);
		// The grant hands back D1's bookmark; reading with it sees the grant, from whichever replica answers.
		const bookmark = granted.headers.get("x-d1-bookmark");
		expect(bookmark).toBeTruthy();
		const response = await call("GET", `/v1/users/${user}/entitlements`, undefined, { ...bearer(), "x-d1-bookmark": bookmark! });
		expect(response.status).toBe(200);
		expect(response.headers.get("x-d1-bookmark")).toBeTruthy();
		expect(await json(response)).toEqual({
			user_id: user,
			entitlements: [
				expect.objectContaining({ id: "premium", active: true, state: "active", productId: "premium_monthly", store: "google_play", environment: "Production", expiresAt: purchase.expiryTime }),
			],
		});
	});

	it("answers inactive for a user with nothing", async () => {
		const body = await json(await call("GET", `/v1/users/${uniqueUser()}/entitlements`, undefined, bearer()));
		expect(body.entitlements).toEqual([expect.objectContaining({ id: "premium", active: false, state: "never_purchased" })]);
	});
});

describe("GET /v1/users/{userId}/access/{id}", () => {
	it("answers with the API key, and with the app's verify key for a wrapper app asking for its own user", async () => {
		const user = uniqueUser();
		const tx = await appleEmulator.createTransaction({ bundleId: "com.example.transfer", productId: "premium_lifetime" });
		expect((await json(await call("POST", `/verify?key=${TEST_APPS.transfer.verifyKey}`, appleVerifyBody(tx, { userIdentifier: user, appId: TEST_APPS.transfer.id })))).complete_purchase).toBe(true);
		const byApiKey = await json(await call("GET", `/v1/users/${user}/access/premium`, undefined, bearer(TEST_APPS.transfer.apiKey)));
		expect(byApiKey).toMatchObject({ user_id: user, id: "premium", access: true, entitlement: "premium", productId: "premium_lifetime", expiresAt: null });
		const byVerifyKey = await call("GET", `/v1/users/${user}/access/premium_lifetime?appId=${TEST_APPS.transfer.id}&key=${TEST_APPS.transfer.verifyKey}`);
		expect(byVerifyKey.status).toBe(200);
		expect(await json(byVerifyKey)).toMatchObject({ access: true, entitlement: null });
	});

	it("refuses a wrong verify key, a missing appId, and no key at all", async () => {
		for (const path of [
			`/v1/users/u/access/premium?appId=${TEST_APPS.transfer.id}&key=wrong-key-0123456789abcdef`,
			`/v1/users/u/access/premium?key=${TEST_APPS.transfer.verifyKey}`,
			"/v1/users/u/access/premium",
		]) {
			expect((await call("GET", path)).status).toBe(401);
		}
	});

	it("is one indexed query: D1 answers it from purchases_by_user_product", async () => {
		const { env } = await import("cloudflare:workers");
		const plan = await env.DB.prepare(
			"EXPLAIN QUERY PLAN SELECT * FROM purchases WHERE app_id = ?1 AND user_id = ?2 AND product_id IN (?3, ?4)",
		)
			.bind("1234", "u", "premium_monthly", "premium_lifetime")
			.all<{ detail: string }>();
		expect(plan.results.map((r) => r.detail).join(" ")).toContain("purchases_by_user_product");
	});
});
