import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyAppleSignedData } from "../src/apple/signed-data";
import { apiClientFor } from "../src/apple/verify";
import { googleClientFor } from "../src/google/verify";
import { APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleEmulator, testApp, testConfig, type AppleTransactionUpdate } from "./support/apple-service.ts";
import { SAMPLE_APP } from "./support/fixtures.ts";
import { emulator, json, type GooglePurchaseUpdate } from "./support/service.ts";

/**
 * A purchase's life at the stores, played by the emulator's admin API: each change moves the purchase as the store
 * would and sends the store's notification for it (or, with notify false, only records it).
 */

async function verified(jws: string) {
	return (await verifyAppleSignedData(jws, { roots: testConfig().appleTrustStore, allowLocalTesting: false })).payload as Record<string, any>;
}

/** What Get All Subscription Statuses says of a subscription now: status, signed transaction and renewal info, decoded. */
async function subscriptionStatus(transactionId: string) {
	const client = apiClientFor(testApp(APPLE_SAMPLE.appId), testConfig())!;
	const { value } = await client.getAllSubscriptionStatuses(transactionId, { environment: "Production" });
	const last = value.data[0]!.lastTransactions[0]!;
	return { status: last.status, transaction: await verified(last.signedTransactionInfo), renewal: await verified(last.signedRenewalInfo!) };
}

const appleChanges: [description: string, setup: AppleTransactionUpdate[], change: AppleTransactionUpdate, type: string, subtype: string | undefined][] = [
	["a refund", [], { revoked: true }, "REFUND", undefined],
	["a prorated refund", [], { revoked: "REFUND_PRORATED" }, "REFUND", undefined],
	["Family Sharing withdrawn", [], { revoked: "FAMILY_REVOKE" }, "REVOKE", undefined],
	["a refund reversed", [{ revoked: true }], { revoked: false }, "REFUND_REVERSED", undefined],
	["auto-renew turned off", [], { autoRenew: false }, "DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED"],
	["auto-renew turned on again", [{ autoRenew: false }], { autoRenew: true }, "DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_ENABLED"],
	["a failed renewal with a grace period", [], { billingRetry: { gracePeriodSeconds: 3600 } }, "DID_FAIL_TO_RENEW", "GRACE_PERIOD"],
	["a failed renewal without one", [], { billingRetry: {} }, "DID_FAIL_TO_RENEW", undefined],
	["the billing retry given up", [{ billingRetry: {} }], { billingRetry: false }, "EXPIRED", "BILLING_RETRY"],
	["an expiry with auto-renew off", [{ autoRenew: false }], { expiresInSeconds: -1 }, "EXPIRED", "VOLUNTARY"],
	["an expiry with auto-renew on", [], { expiresInSeconds: -1 }, "EXPIRED", "BILLING_RETRY"],
	["an extended renewal date", [], { expiresInSeconds: 40 * 24 * 3600 }, "RENEWAL_EXTENDED", undefined],
];

describe("an App Store subscription changed through the admin API", () => {
	it.each(appleChanges)("sends %s as %s %s", async (_, setup, change, type, subtype) => {
		const tx = await appleEmulator.createSubscription();
		for (const step of setup) await appleEmulator.updateTransaction(tx.transactionId, { ...step, notify: false });
		const { notifications } = await appleEmulator.updateTransaction(tx.transactionId, change);
		expect(notifications).toEqual([{ notificationUUID: expect.any(String), notificationType: type, ...(subtype ? { subtype } : {}), sent: true }]);
	});

	it("sends nothing for what does not change", async () => {
		const tx = await appleEmulator.createSubscription();
		expect((await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: true, revoked: false, billingRetry: false })).notifications).toEqual([]);
	});

	it("shows billing retry and grace period in the renewal info and the subscription's status", async () => {
		const tx = await appleEmulator.createSubscription();
		const before = Date.now();
		await appleEmulator.updateTransaction(tx.transactionId, { billingRetry: { gracePeriodSeconds: 3600 } });
		const grace = await subscriptionStatus(tx.transactionId);
		expect(grace.status).toBe(4);
		expect(grace.renewal).toMatchObject({ isInBillingRetryPeriod: true, autoRenewStatus: 1, expirationIntent: 2, gracePeriodExpiresDate: expect.any(Number) });
		expect(grace.renewal.gracePeriodExpiresDate).toBeGreaterThan(before + 3500_000);
		// The renewal failed when the period ended: the period is over.
		expect(grace.transaction.expiresDate).toBeLessThanOrEqual(Date.now());

		await appleEmulator.updateTransaction(tx.transactionId, { billingRetry: {} });
		expect((await subscriptionStatus(tx.transactionId)).status).toBe(3);
		await appleEmulator.updateTransaction(tx.transactionId, { billingRetry: false });
		const expired = await subscriptionStatus(tx.transactionId);
		expect(expired.status).toBe(2);
		expect(expired.renewal).toMatchObject({ isInBillingRetryPeriod: false, expirationIntent: 2 });
		expect(expired.renewal).not.toHaveProperty("gracePeriodExpiresDate");
	});

	it("shows auto-renew off in the renewal info", async () => {
		const tx = await appleEmulator.createSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false });
		expect((await subscriptionStatus(tx.transactionId)).renewal).toMatchObject({ autoRenewStatus: 0, isInBillingRetryPeriod: false });
		expect(await appleEmulator.transaction(tx.transactionId)).toMatchObject({ autoRenew: false, isInBillingRetry: false, gracePeriodExpiresDate: null, isUpgraded: false });
	});

	it("refuses renewal changes for what does not renew, naming the field", async () => {
		const tx = await appleEmulator.createTransaction();
		for (const patch of [{ autoRenew: false }, { billingRetry: {} }] as const) {
			const response = await fetch(`${env.TEST_EMULATOR_URL}/_emulator/apple/transactions/${tx.transactionId}`, { method: "POST", body: JSON.stringify(patch) });
			expect(response.status).toBe(400);
			expect((await json(response)).field).toBe(Object.keys(patch)[0]);
		}
	});
});

describe("an App Store purchase created through the admin API", () => {
	it("makes no notification unless asked to, and with notify false only records it", async () => {
		const tx = await appleEmulator.createSubscription();
		expect(tx.notifications).toEqual([]);
		expect(await emulator.notifications({ transaction: tx.transactionId })).toEqual([]);
		const silent = await appleEmulator.createSubscription({ notify: false });
		expect(await emulator.notifications({ transaction: silent.transactionId })).toEqual([expect.objectContaining({ type: "SUBSCRIBED", subtype: "INITIAL_BUY", sent: false })]);
		expect((await emulator.outbox()).filter((d) => d.transactionId === silent.transactionId)).toEqual([]);
	});

	it("sends SUBSCRIBED, DID_RENEW or ONE_TIME_CHARGE when asked to", async () => {
		const first = await appleEmulator.createSubscription({ notify: true });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, notify: true });
		const coins = await appleEmulator.createTransaction({ productId: "coins_100", type: "Consumable", notify: true });
		expect([first, renewal, coins].map((t) => t.notifications.map(({ notificationType, subtype }) => [notificationType, subtype]))).toEqual([
			[["SUBSCRIBED", "INITIAL_BUY"]],
			[["DID_RENEW", undefined]],
			[["ONE_TIME_CHARGE", undefined]],
		]);
	});

	it("sends DID_RENEW with BILLING_RECOVERY for a renewal that ends a billing retry", async () => {
		const first = await appleEmulator.createSubscription();
		await appleEmulator.updateTransaction(first.transactionId, { billingRetry: { gracePeriodSeconds: 60 }, notify: false });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, notify: true });
		expect(renewal.notifications).toEqual([expect.objectContaining({ notificationType: "DID_RENEW", subtype: "BILLING_RECOVERY" })]);
		expect(await appleEmulator.transaction(first.transactionId)).toMatchObject({ isInBillingRetry: false, gracePeriodExpiresDate: null });
		expect((await subscriptionStatus(first.transactionId)).status).toBe(1);
	});

	it("marks the transaction upgraded from with isUpgraded, signed", async () => {
		const first = await appleEmulator.createSubscription();
		await appleEmulator.createSubscription({ renewalOf: first.transactionId, productId: "premium_yearly", upgrade: true });
		const { payload } = await appleEmulator.notify(first.transactionId, "DID_CHANGE_RENEWAL_PREF", "UPGRADE");
		expect(await verified(payload.data.signedTransactionInfo)).toMatchObject({ transactionId: first.transactionId, isUpgraded: true });
		const client = apiClientFor(testApp(APPLE_SAMPLE.appId), testConfig())!;
		const { value } = await client.getTransactionInfo(first.transactionId, { environment: "Production" });
		expect(await verified(value.signedTransactionInfo)).toHaveProperty("isUpgraded", true);
	});
});

const googleChanges: [from: string, patch: GooglePurchaseUpdate, type: string][] = [
	["active", { state: "canceled" }, "SUBSCRIPTION_CANCELED"],
	["active", { state: "expired" }, "SUBSCRIPTION_EXPIRED"],
	["active", { state: "on_hold" }, "SUBSCRIPTION_ON_HOLD"],
	["active", { state: "in_grace_period" }, "SUBSCRIPTION_IN_GRACE_PERIOD"],
	["active", { state: "paused" }, "SUBSCRIPTION_PAUSED"],
	["on_hold", { state: "active" }, "SUBSCRIPTION_RECOVERED"],
	["in_grace_period", { state: "active" }, "SUBSCRIPTION_RECOVERED"],
	["canceled", { state: "active" }, "SUBSCRIPTION_RESTARTED"],
	["active", { expiresInSeconds: 60 * 24 * 3600 }, "SUBSCRIPTION_RENEWED"],
	["active", { refund: true }, "VOIDED_PURCHASE"],
];

describe("a Google Play subscription changed through the admin API", () => {
	it.each(googleChanges)("from %s, %j sends %s", async (state, patch, type) => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", state });
		const { notifications } = await emulator.updateGooglePurchase(purchase.purchaseToken, patch);
		expect(notifications).toEqual([{ messageId: expect.stringMatching(/^\d+$/), type, sent: true }]);
	});

	it("is voided by a refund: expired now, and listed as voided", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const updated = await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true });
		expect(updated).toMatchObject({ state: "expired", voided: true, expiryTime: expect.any(Number) });
		expect(updated.expiryTime).toBeLessThanOrEqual(Date.now());
		const again = await fetch(`${env.TEST_EMULATOR_URL}/_emulator/google/purchases/${encodeURIComponent(purchase.purchaseToken)}`, { method: "POST", body: '{"refund": true}' });
		expect((await json(again)).field).toBe("refund");
	});

	it("carries linkedPurchaseToken in subscriptionsv2 when it replaces an earlier purchase", async () => {
		const earlier = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const later = await emulator.createGooglePurchase({ productId: "premium_yearly", type: "subscription", linkedPurchaseToken: earlier.purchaseToken, notify: true });
		expect(later.notifications).toEqual([expect.objectContaining({ type: "SUBSCRIPTION_PURCHASED" })]);
		const client = googleClientFor(testApp(SAMPLE_APP.id), testConfig());
		expect((await client.getSubscription(later.purchaseToken)).value.linkedPurchaseToken).toBe(earlier.purchaseToken);
		expect((await client.getSubscription(earlier.purchaseToken)).value).not.toHaveProperty("linkedPurchaseToken");
	});

	it("refuses a linkedPurchaseToken that names no subscription of the package", async () => {
		const product = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		for (const linkedPurchaseToken of ["no-such-token", product.purchaseToken]) {
			const response = await fetch(`${env.TEST_EMULATOR_URL}/_emulator/google/purchases`, {
				method: "POST",
				body: JSON.stringify({ packageName: SAMPLE_APP.packageName, productId: "premium_monthly", type: "subscription", linkedPurchaseToken }),
			});
			expect(response.status).toBe(400);
			expect((await json(response)).field).toBe("linkedPurchaseToken");
		}
	});
});

describe("a Google Play one-time product changed through the admin API", () => {
	it("sends ONE_TIME_PRODUCT_CANCELED when canceled, and when refunded is canceled and voided", async () => {
		const canceled = await emulator.createGooglePurchase({ productId: "premium_lifetime", notify: true });
		expect(canceled.notifications).toEqual([expect.objectContaining({ type: "ONE_TIME_PRODUCT_PURCHASED" })]);
		expect((await emulator.updateGooglePurchase(canceled.purchaseToken, { state: "canceled" })).notifications).toEqual([expect.objectContaining({ type: "ONE_TIME_PRODUCT_CANCELED" })]);

		const refunded = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const updated = await emulator.updateGooglePurchase(refunded.purchaseToken, { refund: true });
		expect(updated).toMatchObject({ state: "canceled", voided: true, notifications: [expect.objectContaining({ type: "VOIDED_PURCHASE" })] });
		const client = googleClientFor(testApp(SAMPLE_APP.id), testConfig());
		expect((await client.getProduct("premium_lifetime", refunded.purchaseToken)).value.purchaseState).toBe(1);
	});
});
