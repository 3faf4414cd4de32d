import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { APPLE_ISSUER_ID, APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleBearerToken, appleEmulator, testApp } from "./support/apple-service.ts";
import { emulator, json } from "./support/service.ts";

/**
 * The store emulator's admin API (/_emulator/...) refuses a malformed body with 400 naming the field, as the
 * service's own routes do, so a test that asks for something the emulator cannot do fails at once, not later.
 */

function admin(path: string, body: unknown): Promise<Response> {
	return fetch(`${env.TEST_EMULATOR_URL}/_emulator${path}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

async function expectRefused(response: Response, field: string): Promise<void> {
	expect(response.status).toBe(400);
	const body = await json(response);
	expect(body).toEqual({ error: expect.stringMatching(new RegExp(`^${field.replace(".", "\\.")}: .+`)), field });
}

const cases: [path: string, body: Record<string, unknown>, field: string][] = [
	["/google/purchases", { productId: "premium_lifetime" }, "packageName"],
	["/google/purchases", { packageName: "", productId: "premium_lifetime" }, "packageName"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: 7 }, "productId"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: "p", type: "bundle" }, "type"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: "p", state: "active" }, "state"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: "p", type: "subscription", state: "purchased" }, "state"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: "p", quantity: 0 }, "quantity"],
	["/google/purchases", { packageName: "com.example.iapedge", productId: "p", acknowledged: "yes" }, "acknowledged"],
	["/faults", { mode: "error" }, "match"],
	["/faults", { match: "x", mode: "explode" }, "mode"],
	["/faults", { match: "x", mode: "error", status: 1000 }, "status"],
	["/faults", { match: "x", mode: "slow", delayMs: -1 }, "delayMs"],
	["/faults", { match: "x", mode: "error", times: 0 }, "times"],
	["/apple/transactions", { productId: "premium_lifetime" }, "bundleId"],
	["/apple/transactions", { bundleId: APPLE_SAMPLE.bundleId }, "productId"],
	["/apple/transactions", { bundleId: APPLE_SAMPLE.bundleId, productId: "p", type: "Subscription" }, "type"],
	["/apple/transactions", { bundleId: APPLE_SAMPLE.bundleId, productId: "p", environment: "Staging" }, "environment"],
	["/apple/transactions", { bundleId: APPLE_SAMPLE.bundleId, productId: "p", revoked: "REFUND" }, "revoked"],
	["/apple/transactions", { bundleId: APPLE_SAMPLE.bundleId, productId: "p", renewalOf: "1000000999999999" }, "renewalOf"],
	["/apple/errors", { errorCode: 4290000 }, "match"],
	["/apple/errors", { match: "x" }, "errorCode"],
	["/apple/errors", { match: "x", errorCode: 4290000, receiptStatus: 21005 }, "errorCode"],
	["/apple/errors", { match: "x", errorCode: 42 }, "errorCode"],
	["/apple/errors", { match: "x", receiptStatus: "21005" }, "receiptStatus"],
	["/apple/errors", { match: "x", errorCode: 4290000, times: 1.5 }, "times"],
];

describe("the emulator's admin API", () => {
	it.each(cases)("refuses POST %s %j with 400 naming %s", async (path, body, field) => {
		await expectRefused(await admin(path, body), field);
	});

	it("refuses a body that is not JSON", async () => {
		const response = await admin("/faults", "{mode: error");
		expect(response.status).toBe(400);
		expect(await json(response)).toEqual({ error: "body: must be a JSON object" });
	});

	it("refuses a change to a Google purchase that its type cannot have, and changes nothing", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await expectRefused(await admin(`/google/purchases/${encodeURIComponent(purchase.purchaseToken)}`, { state: "expired" }), "state");
		await expectRefused(await admin(`/google/purchases/${encodeURIComponent(purchase.purchaseToken)}`, { acknowledged: 1 }), "acknowledged");
		expect((await emulator.googlePurchase(purchase.purchaseToken)).state).toBe("purchased");
		// An empty body changes nothing, as before.
		expect((await admin(`/google/purchases/${encodeURIComponent(purchase.purchaseToken)}`, "")).status).toBe(200);
	});

	it("refuses to expire a transaction that is not a subscription, without refunding it half-way", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectRefused(await admin(`/apple/transactions/${tx.transactionId}`, { revoked: true, expiresInSeconds: 60 }), "expiresInSeconds");
		await expectRefused(await admin(`/apple/transactions/${tx.transactionId}`, { revoked: "maybe" }), "revoked");
		expect(await appleEmulator.transaction(tx.transactionId)).toMatchObject({ revocationDate: null });
	});
});

describe("the emulator's one fault registry", () => {
	it("lets each layer take the faults it answers with: a generic error first, then Apple's coded one, then none", async () => {
		const tx = await appleEmulator.createTransaction();
		await emulator.fault({ match: tx.transactionId, mode: "error", status: 503 });
		await appleEmulator.error({ match: tx.transactionId, errorCode: 4290000 });
		const token = await appleBearerToken({
			privateKeyPem: testApp(APPLE_SAMPLE.appId).apple!.api!.privateKey,
			keyId: APPLE_SAMPLE.keyId,
			issuerId: APPLE_ISSUER_ID,
			bundleId: APPLE_SAMPLE.bundleId,
		});
		const get = () => fetch(`${env.TEST_EMULATOR_URL}/apple/production/inApps/v1/transactions/${tx.transactionId}`, { headers: { authorization: `Bearer ${token}` } });
		expect((await get()).status).toBe(503);
		const coded = await get();
		expect(coded.status).toBe(429);
		expect(await json(coded)).toMatchObject({ errorCode: 4290000 });
		expect((await get()).status).toBe(200);
	});
});
