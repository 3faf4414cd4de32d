import { describe, expect, it } from "vitest";
import { verifyAppleEvidence } from "../src/apple/verify";
import { appleEvidence } from "../src/http/fields";
import type { AppConfig } from "../src/config/schema";
import { StoreUnreachable } from "../src/answers";
import { APPLE_SAMPLE, APPLE_SANDBOX, APPLE_TEST_APPS } from "./support/apple-fixtures.ts";
import { appleEmulator, refusal, testApp, testConfig } from "./support/apple-service.ts";
import { buildAppReceipt } from "./support/receipt-builder.ts";
import { emulator } from "./support/service.ts";

/** verifyAppleEvidence with a legacy app receipt (StoreKit 1): through the App Store Server API, or verifyReceipt. */

const sample = () => testApp(APPLE_SAMPLE.appId);
const { receiptOnly, receiptStrict, refresh } = APPLE_TEST_APPS;

/** Evidence as a validate body would carry it; the user defaults to one that no appAccountToken names. */
function verify(app: AppConfig, fields: Omit<Parameters<typeof appleEvidence>[0], "userId"> & { userId?: string }) {
	const evidence = appleEvidence({ userId: "test-user", ...fields });
	if (!evidence) throw new Error("test bug: no evidence");
	return verifyAppleEvidence(app, testConfig(), evidence);
}

describe("a legacy receipt, for an app with API credentials", () => {
	it("is accepted once Apple confirms the claimed transaction in it", async () => {
		const tx = await appleEmulator.createTransaction();
		const purchase = await verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt, transactionId: tx.transactionId });
		expect(purchase).toMatchObject({ transactionId: tx.transactionId, environment: "Production", state: "active" });
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(1);
	});

	it("picks the transaction of the claimed product when the claimed id is not in it (a StoreKit 1 restore)", async () => {
		const tx = await appleEmulator.createTransaction();
		expect((await verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt, transactionId: "1000000555555555" })).transactionId).toBe(tx.transactionId);
	});

	it("is refused when no transaction in it is the claimed purchase, without asking Apple", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "premium_lifetime" });
		const err = await refusal(verify(sample(), { productId: "coins_100", receipt: tx.receipt, transactionId: "1000000555555555" }));
		expect(err.code).toBe("invalid_purchase");
		expect(await emulator.calls(tx.transactionId)).toBe(0);
	});

	it("is refused when Apple does not know the transaction the receipt names", async () => {
		const receipt = buildAppReceipt({ bundleId: APPLE_SAMPLE.bundleId, inApp: [{ transactionId: "1000000444444444", productId: "premium_lifetime" }] });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", receipt }))).code).toBe("invalid_purchase");
	});

	it("is refused as Sandbox for an app that accepts only Production, without asking Apple", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox" });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt }))).code).toBe("sandbox_not_accepted");
		expect(await emulator.calls(tx.transactionId)).toBe(0);
	});

	it("is confirmed on the Sandbox server for an app that accepts Sandbox", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		expect((await verify(testApp(APPLE_SANDBOX.appId), { productId: "premium_lifetime", receipt: tx.receipt })).environment).toBe("Sandbox");
	});

	it("is refused when it is an Xcode receipt, which no server can confirm", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Xcode" });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt }))).code).toBe("environment_not_accepted");
	});

	it("is refused when it is another app's receipt", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: refresh.bundleId });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt }))).code).toBe("app_mismatch");
	});

	it("is refused when it cannot be read", async () => {
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", receipt: btoa("not a receipt") }))).code).toBe("invalid_purchase");
	});

	it("reports Apple being down as unreachable", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode: 5000001 });
		await expect(verify(sample(), { productId: "premium_lifetime", receipt: tx.receipt })).rejects.toBeInstanceOf(StoreUnreachable);
	});
});

describe("a legacy receipt, for an app with only a shared secret (verifyReceipt)", () => {
	it("is accepted from Production", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId, productId: "coins_100", type: "Consumable" });
		const purchase = await verify(testApp(receiptOnly.id), { productId: "coins_100", receipt: tx.receipt, transactionId: tx.transactionId });
		expect(purchase).toMatchObject({
			store: "app_store",
			environment: "Production",
			transactionId: tx.transactionId,
			originalTransactionId: tx.transactionId,
			productId: "coins_100",
			kind: "consumable",
			expiresAt: null,
			state: "active",
			quantity: 1,
		});
		expect(await emulator.calls(`/apple/receipt/sandbox/verifyReceipt ${tx.transactionId}`)).toBe(0);
	});

	it("moves on to Sandbox after 21007 for an app that accepts Sandbox", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId, environment: "Sandbox" });
		expect((await verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt })).environment).toBe("Sandbox");
		expect(await emulator.calls(tx.transactionId, "apple.verifyReceipt")).toBe(2);
	});

	it("refuses a Sandbox receipt for an app that accepts only Production, without asking Sandbox", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptStrict.bundleId, environment: "Sandbox" });
		expect((await refusal(verify(testApp(receiptStrict.id), { productId: "premium_lifetime", receipt: tx.receipt }))).code).toBe("sandbox_not_accepted");
		expect(await emulator.calls(tx.transactionId, "apple.verifyReceipt")).toBe(1);
	});

	it("judges a subscription by its latest renewal", async () => {
		const first = await appleEmulator.createSubscription({ bundleId: receiptOnly.bundleId, expiresInSeconds: -60 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 3600 });
		const purchase = await verify(testApp(receiptOnly.id), { productId: "premium_monthly", receipt: first.receipt, transactionId: first.transactionId });
		expect(purchase).toMatchObject({ kind: "subscription", transactionId: renewal.transactionId, expiresAt: renewal.expiresDate });
	});

	it("says an expired subscription is expired", async () => {
		const tx = await appleEmulator.createSubscription({ bundleId: receiptOnly.bundleId, expiresInSeconds: -60 });
		expect(await verify(testApp(receiptOnly.id), { productId: "premium_monthly", receipt: tx.receipt })).toMatchObject({ state: "expired", subscriptionId: tx.originalTransactionId });
	});

	it("says a refunded purchase is refunded", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		expect((await verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt })).state).toBe("refunded");
	});

	it("refuses a receipt that holds no transaction of the claimed product", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId, productId: "premium_lifetime" });
		expect((await refusal(verify(testApp(receiptOnly.id), { productId: "coins_100", receipt: tx.receipt, transactionId: "1000000555555555" }))).code).toBe("invalid_purchase");
	});

	it("refuses a receipt Apple cannot authenticate (21003)", async () => {
		const forged = buildAppReceipt({ bundleId: receiptOnly.bundleId, inApp: [{ transactionId: "1000000333333333", productId: "premium_lifetime" }] });
		const err = await refusal(verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: forged }));
		expect(err).toMatchObject({ code: "invalid_purchase", message: expect.stringContaining("21003") });
	});

	it("refuses when Apple says the shared secret does not match (21004)", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		const app = testApp(receiptOnly.id);
		const wrongSecret: AppConfig = { ...app, apple: { ...app.apple!, sharedSecret: "wrong-secret-0123456789abcdef" } };
		const err = await refusal(verify(wrongSecret, { productId: "premium_lifetime", receipt: tx.receipt }));
		expect(err).toMatchObject({ code: "invalid_purchase", message: expect.stringContaining("21004") });
		expect(err.message).not.toContain("wrong-secret");
	});

	it("refuses when Apple no longer has the account (21010)", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		await appleEmulator.error({ match: tx.transactionId, receiptStatus: 21010 });
		expect((await refusal(verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt }))).code).toBe("invalid_purchase");
	});

	it.each<[{ receiptStatus: number; isRetryable?: boolean }, string]>([
		[{ receiptStatus: 21002 }, "malformed or temporary"],
		[{ receiptStatus: 21005 }, "server unavailable"],
		[{ receiptStatus: 21009 }, "internal data access error"],
		[{ receiptStatus: 21150 }, "internal data access error (21100-21199)"],
		[{ receiptStatus: 21003, isRetryable: true }, "any status Apple marks is-retryable"],
	])("reports %o (%s) as unreachable", async (status) => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		await appleEmulator.error({ match: tx.transactionId, ...status });
		await expect(verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt })).rejects.toBeInstanceOf(StoreUnreachable);
	});

	it("reports an HTTP 5xx and a timeout as unreachable", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		await emulator.fault({ match: tx.transactionId, mode: "error", status: 503 });
		await expect(verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt })).rejects.toBeInstanceOf(StoreUnreachable);
		await emulator.fault({ match: tx.transactionId, mode: "slow", delayMs: testConfig().storeTimeoutMs + 1_000 });
		await expect(verify(testApp(receiptOnly.id), { productId: "premium_lifetime", receipt: tx.receipt })).rejects.toMatchObject({ message: expect.stringContaining("no answer within") });
	});
});
