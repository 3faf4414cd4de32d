import { afterEach, describe, expect, it } from "vitest";
import { LIMITED_APP_LIMIT, SAMPLE_APP, TEST_APPS } from "./support/fixtures.ts";
import { appleEmulator } from "./support/apple-service.ts";
import { deliverNotifications } from "./support/notifications.ts";
import { bearer, call, claimedTransaction, emulator, eventually, googleVerifyBody, json, uniqueUser, type CreatedGooglePurchase } from "./support/service.ts";

/**
 * Store quotas: replays answered from what the ledger knows, one store call for many callers, a negative cache, and
 * each store's request limits held by one limiter per bucket for every isolate. Store calls are counted at the
 * emulator, which enforces the stores' limits and answers their 429s.
 */

async function verify(purchase: CreatedGooglePurchase, appId: string, userIdentifier: string, status = "purchased") {
	const response = await call("POST", "/verify", googleVerifyBody(purchase, { appId, userIdentifier, status }));
	return { status: response.status, body: await json(response), retryAfter: Number(response.headers.get("retry-after")) };
}

/** The Play API look-ups of a purchase (acknowledgements are counted apart). */
function lookups(token: string): Promise<number> {
	return emulator.calls(token).then(async (all) => all - (await emulator.calls(token, "google.products.acknowledge")) - (await emulator.calls(token, "google.subscriptions.acknowledge")));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
	await emulator.clearLimits();
});

describe("a replay the ledger can answer", () => {
	const app = TEST_APPS.quota;

	it("costs no store call when its owner replays a subscription within the app's freshness", async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		const user = uniqueUser();
		expect((await verify(purchase, app.id, user)).body).toEqual({ complete_purchase: true });
		expect(await lookups(purchase.purchaseToken)).toBe(1);
		for (const status of ["purchased", "restored", "restored", "purchased", "restored"]) {
			expect((await verify(purchase, app.id, user, status)).body).toEqual({ complete_purchase: true });
		}
		expect(await lookups(purchase.purchaseToken)).toBe(1);
	});

	it("answers a one-time purchase from the ledger once the claim has acknowledged it, not before", async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_lifetime" });
		const user = uniqueUser();
		expect((await verify(purchase, app.id, user)).body).toEqual({ complete_purchase: true });
		await eventually(async () => (await claimedTransaction("google_play", purchase.purchaseToken))?.ackState === "done");
		const before = await lookups(purchase.purchaseToken);
		for (let i = 0; i < 5; i++) expect((await verify(purchase, app.id, user, "restored")).body).toEqual({ complete_purchase: true });
		expect(await lookups(purchase.purchaseToken)).toBe(before);
	});

	it("refuses another user from the claim alone: no store call is needed to say no", async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		expect((await verify(purchase, app.id, uniqueUser())).body).toEqual({ complete_purchase: true });
		const before = await emulator.calls(purchase.purchaseToken);
		for (let i = 0; i < 3; i++) {
			expect((await verify(purchase, app.id, uniqueUser("sharer"), "restored")).body).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		}
		expect(await emulator.calls(purchase.purchaseToken)).toBe(before);
	});

	it("asks the store again once a subscription is past its known expiry", async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true, expiresInSeconds: 2 });
		const user = uniqueUser();
		expect((await verify(purchase, app.id, user)).body).toEqual({ complete_purchase: true });
		// Google renewed it, and the notification never came.
		await emulator.updateGooglePurchase(purchase.purchaseToken, { expiresInSeconds: 3600, notify: false });
		await sleep(2_100);
		expect((await verify(purchase, app.id, user, "restored")).body).toEqual({ complete_purchase: true });
		expect(await lookups(purchase.purchaseToken)).toBe(2);
	});

	it("asks the store again once its last answer is older than the app's freshness allows", async () => {
		const stale = TEST_APPS.stale;
		const purchase = await emulator.createGooglePurchase({ packageName: stale.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		const user = uniqueUser();
		expect((await verify(purchase, stale.id, user)).body).toEqual({ complete_purchase: true });
		await sleep(1_100);
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled", notify: false });
		expect((await verify(purchase, stale.id, user, "restored")).body).toEqual({ complete_purchase: true });
		expect(await lookups(purchase.purchaseToken)).toBe(2);
		expect((await claimedTransaction("google_play", purchase.purchaseToken))?.purchase.willRenew).toBe(false);
	});

	it("reflects a notification in the next answer without a store call: a renewal grants, a refund refuses", async () => {
		const renewed = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true, expiresInSeconds: 60 });
		const refunded = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		const user = uniqueUser();
		expect((await verify(renewed, app.id, user)).body).toEqual({ complete_purchase: true });
		expect((await verify(refunded, app.id, user)).body).toEqual({ complete_purchase: true });

		await emulator.updateGooglePurchase(renewed.purchaseToken, { expiresInSeconds: 30 * 86_400 });
		await emulator.updateGooglePurchase(refunded.purchaseToken, { refund: true });
		await deliverNotifications({ only: (d) => d.transactionId === renewed.purchaseToken || d.transactionId === refunded.purchaseToken });
		const before = [await lookups(renewed.purchaseToken), await lookups(refunded.purchaseToken)];

		expect((await verify(renewed, app.id, user, "restored")).body).toEqual({ complete_purchase: true });
		expect((await verify(refunded, app.id, user, "restored")).body).toMatchObject({ complete_purchase: false, code: "refunded" });
		expect([await lookups(renewed.purchaseToken), await lookups(refunded.purchaseToken)]).toEqual(before);
		expect((await claimedTransaction("google_play", renewed.purchaseToken))?.purchase.expiresAt).toBeGreaterThan(Date.now() + 29 * 86_400_000);
	});

	it('asks the store every time a backend sends "fresh": true', async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		const body = { store: "google_play", userId: uniqueUser(), productId: "premium_monthly", purchaseToken: purchase.purchaseToken };
		expect((await json(await call("POST", "/v1/purchases/validate", body, bearer(app.apiKey)))).success).toBe(true);
		expect((await json(await call("POST", "/v1/purchases/validate", body, bearer(app.apiKey)))).success).toBe(true);
		expect(await lookups(purchase.purchaseToken)).toBe(1);
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -60, notify: false });
		expect(await json(await call("POST", "/v1/purchases/validate", { ...body, fresh: true }, bearer(app.apiKey)))).toMatchObject({ success: false, code: "expired" });
		expect(await lookups(purchase.purchaseToken)).toBe(2);
		const invalid = await call("POST", "/v1/purchases/validate", { ...body, fresh: "yes" }, bearer(app.apiKey));
		expect(invalid.status).toBe(400);
		expect((await json(invalid)).error.field).toBe("fresh");
	});

	it("answers an App Store transaction id replayed by its owner with no second Get Transaction Info", async () => {
		const tx = await appleEmulator.createTransaction();
		const body = { store: "app_store", userId: uniqueUser(), productId: "premium_lifetime", transactionId: tx.transactionId };
		for (let i = 0; i < 4; i++) expect((await json(await call("POST", "/v1/purchases/validate", body, bearer()))).success).toBe(true);
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(1);
	});
});

describe("one store call for many callers", () => {
	const app = TEST_APPS.quota;

	it("gives 50 concurrent first verifications of one purchase one store call, and the purchase one owner", async () => {
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_lifetime", acknowledged: true });
		const users = Array.from({ length: 5 }, () => uniqueUser("device"));
		const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => verify(purchase, app.id, users[i % 5]!)));
		expect(answers.every((a) => a.status === 200)).toBe(true);
		const winners = new Set(users.filter((_, u) => answers.filter((_, i) => i % 5 === u).every((a) => a.body.complete_purchase === true)));
		expect(winners.size).toBe(1);
		for (const [i, a] of answers.entries()) {
			if (!winners.has(users[i % 5]!)) expect(a.body).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		}
		expect(await lookups(purchase.purchaseToken)).toBe(1);
	});

	it("asks about the same junk token once, however often and however concurrently it is posted", async () => {
		const real = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_lifetime" });
		const junk = { ...real, purchaseToken: `junk-${crypto.randomUUID()}`, localVerificationData: "{}" };
		const concurrent = await Promise.all(Array.from({ length: 50 }, () => verify(junk, app.id, uniqueUser())));
		const sequential = [];
		for (let i = 0; i < 50; i++) sequential.push(await verify(junk, app.id, uniqueUser()));
		for (const answer of [...concurrent, ...sequential]) expect(answer.body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
		expect(await emulator.calls(junk.purchaseToken)).toBe(1);
	});
});

describe("the stores' limits, held for every caller", () => {
	it("never exceeds the store's limit under 500 concurrent first verifications; those beyond it get 503 with Retry-After, never false", async () => {
		const app = TEST_APPS.limited;
		await emulator.limit({ bucket: "google.one_time_purchases", limit: LIMITED_APP_LIMIT.limit, periodSeconds: LIMITED_APP_LIMIT.periodSeconds, match: app.packageName });
		const purchases: CreatedGooglePurchase[] = [];
		for (let batch = 0; batch < 10; batch++) {
			purchases.push(...(await Promise.all(Array.from({ length: 50 }, () => emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_lifetime", acknowledged: true })))));
		}
		const answers = await Promise.all(purchases.map((p) => verify(p, app.id, uniqueUser())));

		const granted = answers.filter((a) => a.status === 200);
		const limited = answers.filter((a) => a.status === 503);
		expect(granted.length + limited.length).toBe(500);
		expect(granted.every((a) => a.body.complete_purchase === true)).toBe(true);
		expect(granted.length).toBeGreaterThanOrEqual(LIMITED_APP_LIMIT.burst);
		expect(granted.length).toBeLessThanOrEqual(LIMITED_APP_LIMIT.limit);
		for (const a of limited) {
			expect(a.body.error.code).toBe("store_unreachable");
			expect(a.retryAfter).toBeGreaterThan(0);
		}
		const calls = await emulator.callLog(app.packageName, "google.products.get");
		expect(calls.filter((c) => c.status === 429)).toEqual([]);
		expect(calls.length).toBeLessThanOrEqual(LIMITED_APP_LIMIT.limit);

		const stats = await json(await call("GET", "/v1/stats/upstream", undefined, bearer(app.apiKey)));
		const bucket = stats.buckets.find((b: { bucket: string }) => b.bucket === "one_time_purchases");
		expect(bucket).toMatchObject({ store: "google_play", environment: "Production", limit: LIMITED_APP_LIMIT });
		expect(bucket.lastMinute.calls).toBe(calls.length);
		expect(bucket.lastMinute.limited).toBe(limited.length);
	});

	it("stops every caller of the bucket after a Google 429 until its Retry-After, then calls again", async () => {
		const app = TEST_APPS.quota;
		const [first, second, third] = await Promise.all(
			[1, 2, 3].map(() => emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true })),
		);
		// The account's real quota is lower than the service was told: the store's 429 is what stops it. Its Retry-After
		// (5 s) is longer than a verification may wait for its turn (2 s).
		await emulator.limit({ bucket: "google.subscriptions", limit: 1, periodSeconds: 5, match: app.packageName });
		expect((await verify(first!, app.id, uniqueUser())).body).toEqual({ complete_purchase: true });
		const throttled = await verify(second!, app.id, uniqueUser());
		expect(throttled.status).toBe(503);
		expect(throttled.retryAfter).toBeGreaterThanOrEqual(1);
		// Another purchase, another user: held by the limiter without reaching Google.
		const held = await verify(third!, app.id, uniqueUser());
		expect(held.status).toBe(503);
		expect(held.body.error.message).toContain("429");
		expect(await emulator.calls(third!.purchaseToken)).toBe(0);
		await sleep(throttled.retryAfter * 1000 + 100);
		expect((await verify(third!, app.id, uniqueUser())).body).toEqual({ complete_purchase: true });
		expect((await emulator.callLog(app.packageName, "google.subscriptionsv2.get")).filter((c) => c.status === 429)).toHaveLength(1);
	});

	it("stops every caller after an App Store 429 until Apple's Retry-After (a time in epoch milliseconds)", async () => {
		const [one, two] = await Promise.all([appleEmulator.createTransaction(), appleEmulator.createTransaction()]);
		await appleEmulator.error({ match: one.transactionId, errorCode: 4290000, retryAfterSeconds: 4 });
		const body = (tx: { transactionId: string }) => ({ store: "app_store", userId: uniqueUser(), productId: "premium_lifetime", transactionId: tx.transactionId });
		const throttled = await call("POST", "/v1/purchases/validate", body(one), bearer());
		expect(throttled.status).toBe(503);
		expect(await json(throttled)).toMatchObject({ success: false, purchase_provider_reachable: false });
		const retryAfter = Number(throttled.headers.get("retry-after"));
		expect(retryAfter).toBeGreaterThanOrEqual(3);
		expect(retryAfter).toBeLessThanOrEqual(4);
		expect((await call("POST", "/v1/purchases/validate", body(two), bearer())).status).toBe(503);
		expect(await emulator.calls(two.transactionId)).toBe(0);
		await sleep(retryAfter * 1000 + 100);
		expect((await json(await call("POST", "/v1/purchases/validate", body(two), bearer()))).success).toBe(true);
	});
});

describe("GET /v1/stats/upstream", () => {
	it("shows, per bucket, the calls made and those saved by answering from the ledger, coalescing and the negative cache", async () => {
		const app = TEST_APPS.quota;
		const purchase = await emulator.createGooglePurchase({ packageName: app.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
		const user = uniqueUser();
		const before = (await json(await call("GET", "/v1/stats/upstream", undefined, bearer(app.apiKey)))).buckets.find((b: { bucket: string }) => b.bucket === "subscriptions");
		await verify(purchase, app.id, user);
		for (let i = 0; i < 4; i++) await verify(purchase, app.id, user, "restored");
		const junk = { ...purchase, purchaseToken: `junk-${crypto.randomUUID()}` };
		for (let i = 0; i < 3; i++) await verify(junk, app.id, user);
		const after = await eventually(async () => {
			const stats = await json(await call("GET", "/v1/stats/upstream", undefined, bearer(app.apiKey)));
			const bucket = stats.buckets.find((b: { bucket: string }) => b.bucket === "subscriptions");
			return bucket.lastHour.savedState - before.lastHour.savedState >= 4 && bucket.lastHour.savedNegativeCache - before.lastHour.savedNegativeCache >= 2 ? bucket : undefined;
		});
		expect(after.lastHour.calls - before.lastHour.calls).toBe(2);
		expect(after).toMatchObject({ store: "google_play", limit: { limit: 3000, periodSeconds: 60, burst: 300 }, blockedUntil: null });
		expect(after.lastHourCallsPerVerification).toBeLessThan(1);
	});

	it("lists each bucket the app can spend and needs the app's API key", async () => {
		const stats = await json(await call("GET", "/v1/stats/upstream", undefined, bearer(SAMPLE_APP.apiKey)));
		const names = stats.buckets.map((b: { store: string; bucket: string; environment: string }) => `${b.store}.${b.bucket}.${b.environment}`);
		expect(names).toEqual(expect.arrayContaining(["google_play.subscriptions.Production", "google_play.one_time_purchases.Production", "app_store.transactions.Production", "amazon.receipts.Production"]));
		expect((await call("GET", "/v1/stats/upstream")).status).toBe(401);
	});
});
