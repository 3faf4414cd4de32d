import { describe, expect, it } from "vitest";
import { TEST_APPS } from "./support/fixtures.ts";
import { bearer, call, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/**
 * Rate limits, with the real Rate Limiting binding (vitest.config.ts sets 20 per minute per app and address on
 * /verify, 1,000 per minute per API key on /v1). Over the limit is a 429 with Retry-After, before any work.
 */

/**
 * Locally the binding counts in windows aligned to the wall clock's minutes: a test that spends a limit starts at
 * the beginning of a window, so the window does not roll over halfway through.
 */
async function freshWindow(secondsNeeded: number): Promise<void> {
	const left = 60_000 - (Date.now() % 60_000);
	if (left < secondsNeeded * 1000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

describe("POST /verify from one address", () => {
	it("is answered 429 with Retry-After once the app's limit for that address is spent, before the verify key or the store", async () => {
		await freshWindow(5);
		const address = { "cf-connecting-ip": `192.0.2.${Math.floor(Math.random() * 250)}` };
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.keyed.packageName });
		const body = googleVerifyBody(purchase, { appId: TEST_APPS.keyed.id, userIdentifier: uniqueUser() });
		// Wrong verify keys: each costs a count, and the limit stops the guessing.
		const statuses: number[] = [];
		for (let i = 0; i < 20; i++) statuses.push((await call("POST", "/verify?key=wrong-key-0123456789abcdef", body, address)).status);
		expect(statuses.every((s) => s === 401)).toBe(true);
		const limited = await call("POST", `/verify?key=${TEST_APPS.keyed.verifyKey}`, body, address);
		expect(limited.status).toBe(429);
		expect(limited.headers.get("retry-after")).toBe("60");
		expect((await json(limited)).error).toMatchObject({ code: "rate_limited", message: expect.stringContaining("retry after 60 seconds") });
		expect(await emulator.calls(purchase.purchaseToken)).toBe(0);
		// Another address of the same app is not affected.
		const other = await call("POST", `/verify?key=${TEST_APPS.keyed.verifyKey}`, body);
		expect((await json(other)).complete_purchase).toBe(true);
	});
});

describe("the server API with one key", () => {
	it("is answered 429 with Retry-After once the key's limit is spent, whatever the address", { timeout: 60_000 }, async () => {
		await freshWindow(20);
		const key = bearer(TEST_APPS.rateLimited.apiKey);
		const statuses: number[] = [];
		for (let batch = 0; batch < 20; batch++) {
			const answers = await Promise.all(Array.from({ length: 50 }, () => call("GET", "/v1/users/someone/purchases", undefined, key)));
			statuses.push(...answers.map((a) => a.status));
		}
		expect(statuses.filter((s) => s === 200).length).toBe(1000);
		const limited = await call("GET", "/v1/users/someone/purchases", undefined, key);
		expect(limited.status).toBe(429);
		expect(limited.headers.get("retry-after")).toBe("60");
		expect((await json(limited)).error.code).toBe("rate_limited");
		// Other apps' keys keep working.
		expect((await call("GET", "/v1/users/someone/purchases", undefined, bearer())).status).toBe(200);
	});
});
