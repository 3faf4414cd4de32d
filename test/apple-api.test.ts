import { describe, expect, it } from "vitest";
import { AppStoreServerApiClient, appleRetryAfterSeconds } from "../src/apple/api-client";
import { verifyAppleEvidence } from "../src/apple/verify";
import type { AppConfig } from "../src/config/schema";
import { Misconfigured, NotConfigured, Refusal, StoreUnreachable } from "../src/answers";
import { APPLE_SAMPLE, APPLE_SANDBOX } from "./support/apple-fixtures.ts";
import { appleEmulator, rejection, testApp, testConfig } from "./support/apple-service.ts";
import { generateEcKeyPair } from "./support/keys.ts";
import { emulator } from "./support/service.ts";

/** Purchases named by a transaction id: the App Store Server API client, its environments and its error mapping. */

const sample = () => testApp(APPLE_SAMPLE.appId);
const sandboxApp = () => testApp(APPLE_SANDBOX.appId);

function byId(app: AppConfig, transactionId: string, productId = "premium_lifetime") {
	return verifyAppleEvidence(app, testConfig(), { store: "app_store", form: "transaction_id", productId, transactionId, userId: "test-user" });
}

describe("a transaction id sent for verification", () => {
	it("is accepted once Apple's server returns it, signed", async () => {
		const tx = await appleEmulator.createTransaction();
		const purchase = await byId(sample(), tx.transactionId);
		expect(purchase).toMatchObject({ store: "app_store", environment: "Production", transactionId: tx.transactionId, productId: "premium_lifetime", state: "active" });
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(1);
	});

	it("is refused as invalid when Apple knows no such transaction", async () => {
		const err = await rejection(byId(sample(), "1000000000000001"));
		expect(err).toBeInstanceOf(Refusal);
		expect(err).toMatchObject({ code: "invalid_purchase" });
		expect((err as Refusal).message).toContain("4040010");
	});

	it("is refused as invalid when it is not a transaction id at all (4000006)", async () => {
		expect(await rejection(byId(sample(), "abc"))).toMatchObject({ code: "invalid_purchase", message: expect.stringContaining("4000006") });
	});

	it("is answered not-configured (a 400), not a refusal, for an app without API credentials", async () => {
		const err = await rejection(byId(testApp("apple-receipt-app"), "1000000000000001"));
		expect(err).toBeInstanceOf(NotConfigured);
		expect(err).toMatchObject({ message: expect.stringContaining("apple.api") });
	});
});

describe("Production first, then Sandbox", () => {
	it("finds a Sandbox transaction on the Sandbox server after Production's 4040010, for an app that accepts Sandbox", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		const purchase = await byId(sandboxApp(), tx.transactionId);
		expect(purchase.environment).toBe("Sandbox");
		expect(await emulator.calls(`/apple/production/inApps/v1/transactions/${tx.transactionId}`)).toBe(1);
		expect(await emulator.calls(`/apple/sandbox/inApps/v1/transactions/${tx.transactionId}`)).toBe(1);
	});

	it("never asks the Sandbox server for an app that accepts only Production", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox" });
		const err = await rejection(byId(sample(), tx.transactionId));
		expect(err).toMatchObject({ code: "invalid_purchase", message: expect.stringContaining("Sandbox not asked") });
		expect(await emulator.calls(`/apple/sandbox/inApps/v1/transactions/${tx.transactionId}`)).toBe(0);
	});

	it("does not move on to Sandbox for any other Production error", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		await appleEmulator.error({ match: `/apple/production/inApps/v1/transactions/${tx.transactionId}`, errorCode: 5000000 });
		expect(await rejection(byId(sandboxApp(), tx.transactionId))).toBeInstanceOf(StoreUnreachable);
		expect(await emulator.calls(`/apple/sandbox/inApps/v1/transactions/${tx.transactionId}`)).toBe(0);
	});

	it("asks only Production for a Production transaction", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId });
		expect((await byId(sandboxApp(), tx.transactionId)).environment).toBe("Production");
		expect(await emulator.calls(`/apple/sandbox/inApps/v1/transactions/${tx.transactionId}`)).toBe(0);
	});
});

describe("Apple's errors that say nothing about the purchase", () => {
	it.each([
		[4290000, "rate limited"],
		[5000000, "a general internal error"],
		[5000001, "a retryable internal error"],
		[4040002, "account not found, retryable"],
		[4040004, "app not found, retryable"],
		[4040006, "original transaction not found, retryable"],
		[4000002, "a code not about the id (invalid app identifier)"],
	])("%i (%s) makes the store unreachable, never a refusal", async (errorCode) => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode });
		// An app of its own: a 4290000 holds the app's limiter for a minute, which the tests after it must not meet.
		const err = await rejection(byId({ ...sample(), id: `apple-${errorCode}-app` }, tx.transactionId));
		expect(err).toBeInstanceOf(StoreUnreachable);
		expect(err).toMatchObject({ store: "app_store", message: expect.stringContaining(String(errorCode)) });
	});

	it("passes on the rate limit's Retry-After, converted from Apple's UNIX milliseconds to seconds", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode: 4290000, retryAfterSeconds: 120 });
		// The app's limiter holds every later call for those 120 s: an app of its own keeps the other tests out of it.
		const err = (await rejection(byId({ ...sample(), id: "apple-429-app" }, tx.transactionId))) as StoreUnreachable;
		expect(err.options.retryAfterSeconds).toBeGreaterThanOrEqual(115);
		expect(err.options.retryAfterSeconds).toBeLessThanOrEqual(120);
	});

	it("treats any other 5xx as unreachable", async () => {
		const tx = await appleEmulator.createTransaction();
		await emulator.fault({ match: tx.transactionId, mode: "error", status: 503 });
		expect(await rejection(byId(sample(), tx.transactionId))).toMatchObject({ store: "app_store", message: expect.stringContaining("503") });
	});

	it("treats an answer that is not JSON as unreachable", async () => {
		const tx = await appleEmulator.createTransaction();
		await emulator.fault({ match: tx.transactionId, mode: "garbage" });
		expect(await rejection(byId(sample(), tx.transactionId))).toBeInstanceOf(StoreUnreachable);
	});

	it("gives up after storeTimeoutMs and reports the store unreachable", async () => {
		const tx = await appleEmulator.createTransaction();
		await emulator.fault({ match: tx.transactionId, mode: "slow", delayMs: testConfig().storeTimeoutMs + 1_000 });
		const started = Date.now();
		const err = await rejection(byId(sample(), tx.transactionId));
		expect(err).toMatchObject({ store: "app_store", message: expect.stringContaining("no answer within") });
		expect(Date.now() - started).toBeLessThan(testConfig().storeTimeoutMs + 900);
	});

	it("reports a 401 (our API key is not Apple's) as this deployment's misconfiguration, not as the user's fault", async () => {
		const tx = await appleEmulator.createTransaction();
		const stranger = await generateEcKeyPair();
		const app = sample();
		const misconfigured: AppConfig = { ...app, apple: { ...app.apple!, api: { ...app.apple!.api!, privateKey: stranger.privateKeyPem } } };
		const err = await rejection(byId(misconfigured, tx.transactionId));
		expect(err).toBeInstanceOf(Misconfigured);
		expect((err as Misconfigured).message).toContain("401");
		expect((err as Misconfigured).message).not.toContain("PRIVATE KEY");
	});

	it("answers misconfigured for an API key that is not a P-256 PKCS#8 key, without quoting it", async () => {
		const tx = await appleEmulator.createTransaction();
		const app = sample();
		const privateKey = "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----";
		const broken: AppConfig = { ...app, apple: { ...app.apple!, api: { ...app.apple!.api!, keyId: "BROKENKEY1", privateKey } } };
		const err = await rejection(byId(broken, tx.transactionId));
		expect(err).toBeInstanceOf(Misconfigured);
		expect(err).toMatchObject({ message: expect.stringContaining("BROKENKEY1") });
		expect((err as Misconfigured).message).not.toContain("AAAAAAAA");
	});
});

describe("the API client itself", () => {
	function client(app: AppConfig) {
		const config = testConfig();
		return new AppStoreServerApiClient({ bundleId: app.apple!.bundleId, credentials: app.apple!.api!, endpoints: config.endpoints, timeoutMs: config.storeTimeoutMs });
	}

	it("fetches Get All Subscription Statuses from the transaction's environment", async () => {
		const sub = await appleEmulator.createSubscription({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		const found = await client(sandboxApp()).getAllSubscriptionStatuses(sub.transactionId, { environment: "Sandbox" });
		expect(found.environment).toBe("Sandbox");
		expect(found.value.data[0]?.lastTransactions[0]).toMatchObject({ status: 1, originalTransactionId: sub.transactionId });
		expect(await emulator.calls(`/apple/production/inApps/v1/subscriptions/${sub.transactionId}`)).toBe(0);
	});

	it("reads Apple's Retry-After as UNIX milliseconds, and a plain seconds value as seconds", () => {
		const now = 1_800_000_000_000;
		expect(appleRetryAfterSeconds(new Response(null, { headers: { "retry-after": String(now + 30_000) } }), now)).toBe(30);
		expect(appleRetryAfterSeconds(new Response(null, { headers: { "retry-after": String(now - 5_000) } }), now)).toBe(1);
		expect(appleRetryAfterSeconds(new Response(null, { headers: { "retry-after": "45" } }), now)).toBe(45);
		expect(appleRetryAfterSeconds(new Response(null), now)).toBeUndefined();
	});
});
