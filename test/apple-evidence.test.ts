import { describe, expect, it } from "vitest";
import { appAccountTokenForUser, APP_ACCOUNT_TOKEN_NAMESPACE, uuidV5 } from "../src/apple/app-account-token";
import { verifyAppleEvidence } from "../src/apple/verify";
import { appleEvidence } from "../src/http/fields";
import type { AppConfig } from "../src/config/schema";
import { NotConfigured, StoreUnreachable } from "../src/answers";
import { APPLE_SAMPLE, APPLE_SANDBOX, APPLE_TEST_APPS } from "./support/apple-fixtures.ts";
import { appleEmulator, refusal, rejection, testApp, testConfig } from "./support/apple-service.ts";
import { base64Url, createApplePki, signJws } from "./support/pki.ts";
import { TEST_APPS } from "./support/fixtures.ts";
import { emulator } from "./support/service.ts";

/** verifyAppleEvidence with a StoreKit 2 signed transaction, and the refusals every kind of App Store evidence shares. */

const sample = () => testApp(APPLE_SAMPLE.appId);
const { localTesting, accountToken, refresh } = APPLE_TEST_APPS;

/** Evidence as a validate body would carry it; the user defaults to one that no appAccountToken names. */
function verify(app: AppConfig, fields: Omit<Parameters<typeof appleEvidence>[0], "userId"> & { userId?: string }) {
	const evidence = appleEvidence({ userId: "test-user", ...fields });
	if (!evidence) throw new Error("test bug: no evidence");
	return verifyAppleEvidence(app, testConfig(), evidence);
}

describe("a StoreKit 2 signed transaction", () => {
	it("is accepted offline and normalized, without asking Apple", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "premium_lifetime", type: "Non-Consumable" });
		const purchase = await verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction });
		expect(purchase).toEqual({
			appId: APPLE_SAMPLE.appId,
			store: "app_store",
			environment: "Production",
			transactionId: tx.transactionId,
			originalTransactionId: tx.transactionId,
			subscriptionId: null,
			linkedTransactionId: null,
			orderId: null,
			productId: "premium_lifetime",
			kind: "non_consumable",
			purchasedAt: expect.any(Number),
			expiresAt: null,
			graceExpiresAt: null,
			willRenew: null,
			state: "active",
			quantity: 1,
			// The emulator prices everything at 0.99 USD, as Apple states prices: in milli-units.
			price: 990,
			currency: "USD",
			needsAcknowledgement: false,
			// Offline: Apple's word as of when it signed.
			asOf: (tx as unknown as { signedDate?: number }).signedDate ?? expect.any(Number),
			raw: expect.objectContaining({ transactionId: tx.transactionId, bundleId: APPLE_SAMPLE.bundleId }),
		});
		expect(await emulator.calls(tx.transactionId)).toBe(0);
	});

	it("takes its kind and quantity from the payload", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "coins_100", type: "Consumable", quantity: 5 });
		expect(await verify(sample(), { productId: "coins_100", signedTransaction: tx.signedTransaction })).toMatchObject({ kind: "consumable", quantity: 5 });
	});

	it("is accepted as a subscription with its expiry and web order line item", async () => {
		const tx = await appleEmulator.createSubscription({ expiresInSeconds: 3600 });
		const purchase = await verify(sample(), { productId: "premium_monthly", signedTransaction: tx.signedTransaction });
		expect(purchase).toMatchObject({ kind: "subscription", expiresAt: tx.expiresDate, orderId: expect.stringMatching(/^\d+$/) });
	});

	it("is refused for another product than the one claimed", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "premium_lifetime" });
		expect((await refusal(verify(sample(), { productId: "coins_100", signedTransaction: tx.signedTransaction }))).code).toBe("product_mismatch");
	});

	it("is refused when it belongs to another app", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_TEST_APPS.refresh.bundleId });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction }))).code).toBe("app_mismatch");
	});

	it("is refused when the payload was altered after signing", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "coins_100", type: "Consumable" });
		const [header, payload, signature] = tx.signedTransaction.split(".") as [string, string, string];
		const decoded = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
		const forged = base64Url(JSON.stringify({ ...decoded, productId: "premium_lifetime" }));
		const err = await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: `${header}.${forged}.${signature}` }));
		expect(err.code).toBe("invalid_signature");
		expect(err.message).toContain("(invalid_signature)");
	});

	it("is refused when signed by a chain that does not lead to a trusted root", async () => {
		const tx = await appleEmulator.createTransaction();
		const payload = JSON.parse(atob(tx.signedTransaction.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/")));
		const impostor = await createApplePki();
		const jws = await signJws(payload, impostor.leaf.keyPair.privateKey, impostor.x5c);
		const err = await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: jws }));
		expect(err.code).toBe("invalid_signature");
		expect(err.message).toContain("(untrusted_chain)");
	});

	it("is refused when it is not a JWS at all", async () => {
		const err = await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: "a.b" }));
		expect(err).toMatchObject({ code: "invalid_signature", message: expect.stringContaining("(malformed)") });
	});
});

describe("a refunded or revoked App Store purchase", () => {
	it("is stated as refunded", async () => {
		const tx = await appleEmulator.createTransaction({ revoked: true });
		expect((await verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).state).toBe("refunded");
	});

	it("is stated as revoked when family sharing was withdrawn", async () => {
		const tx = await appleEmulator.createTransaction({ revoked: "FAMILY_REVOKE" });
		expect((await verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).state).toBe("revoked");
	});

	it("refunded after signing is caught for an app with refreshSignedTransactions", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: refresh.bundleId });
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		expect((await verify(testApp(refresh.id), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).state).toBe("refunded");
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(1);
	});

	it("refunded after signing is not seen by an app that trusts the signature alone", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		expect((await verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).state).toBe("active");
	});

	it("with refreshSignedTransactions, Apple being down is reported as unreachable, not as a yes", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: refresh.bundleId });
		await emulator.fault({ match: tx.transactionId, mode: "error", status: 500 });
		await expect(verify(testApp(refresh.id), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).rejects.toBeInstanceOf(StoreUnreachable);
	});
});

describe("an App Store subscription", () => {
	it("is stated as expired once its period has ended", async () => {
		const tx = await appleEmulator.createSubscription({ expiresInSeconds: -60 });
		expect(await verify(sample(), { productId: "premium_monthly", signedTransaction: tx.signedTransaction })).toMatchObject({ state: "expired", subscriptionId: tx.originalTransactionId });
	});

	it("is accepted from an old transaction when Apple says it has renewed since", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: -60 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 3600 });
		const purchase = await verify(sample(), { productId: "premium_monthly", signedTransaction: first.signedTransaction });
		expect(purchase).toMatchObject({ transactionId: renewal.transactionId, originalTransactionId: first.transactionId, expiresAt: renewal.expiresDate });
	});

	it("is stated as expired when the renewal it has since is itself expired", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: -120 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: -60 });
		expect(await verify(sample(), { productId: "premium_monthly", signedTransaction: first.signedTransaction })).toMatchObject({ state: "expired", transactionId: renewal.transactionId });
	});
});

describe("the environment of an App Store purchase", () => {
	it("Sandbox is refused for an app that accepts only Production", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox" });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction }))).code).toBe("sandbox_not_accepted");
	});

	it("Sandbox is accepted, and recorded as Sandbox, for an app that accepts it", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		const purchase = await verify(testApp(APPLE_SANDBOX.appId), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction });
		expect(purchase.environment).toBe("Sandbox");
	});

	it("Xcode-signed data is refused unless the app allows local testing", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Xcode" });
		expect((await refusal(verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction }))).code).toBe("environment_not_accepted");
	});

	it("Xcode-signed data is accepted as Sandbox where allowLocalTesting is on", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: localTesting.bundleId, environment: "Xcode" });
		expect(await verify(testApp(localTesting.id), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction })).toMatchObject({
			environment: "Sandbox",
			transactionId: tx.transactionId,
		});
	});
});

describe("appAccountToken bound to the app's user", () => {
	const app = () => testApp(accountToken.id);

	it("derives a user's token as documented: the UUID itself, else a version 5 UUID in the fixed namespace", async () => {
		// RFC 4122's own example namespace (DNS) and a widely published vector, to pin the algorithm.
		expect(await uuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")).toBe("2ed6657d-e927-568b-95e1-2665a8aea6a2");
		expect(await appAccountTokenForUser("user-42")).toBe(await uuidV5(APP_ACCOUNT_TOKEN_NAMESPACE, "user-42"));
		expect(await appAccountTokenForUser("5D3A0E8C-1111-4A4A-9B9B-0123456789AB")).toBe("5d3a0e8c-1111-4a4a-9b9b-0123456789ab");
	});

	it("is accepted for the user it names", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: accountToken.bundleId, appAccountToken: await appAccountTokenForUser("user-42") });
		expect((await verify(app(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction, userId: "user-42" })).transactionId).toBe(tx.transactionId);
	});

	it("is refused for another user", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: accountToken.bundleId, appAccountToken: await appAccountTokenForUser("user-42") });
		expect((await refusal(verify(app(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction, userId: "user-43" }))).code).toBe("user_mismatch");
	});

	it("accepts a UUID user id whatever its letter case", async () => {
		const userId = crypto.randomUUID();
		const tx = await appleEmulator.createTransaction({ bundleId: accountToken.bundleId, appAccountToken: userId });
		expect((await verify(app(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction, userId: userId.toUpperCase() })).state).toBe("active");
	});

	it("accepts a transaction that names no user (bought outside the app)", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: accountToken.bundleId });
		expect((await verify(app(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction, userId: "user-43" })).state).toBe("active");
	});

	it("is not checked for apps that do not derive it from the user", async () => {
		const tx = await appleEmulator.createTransaction({ appAccountToken: crypto.randomUUID() });
		expect((await verify(sample(), { productId: "premium_lifetime", signedTransaction: tx.signedTransaction, userId: "user-43" })).state).toBe("active");
	});
});

describe("App Store evidence the app cannot use", () => {
	it("is answered not-configured (a 400), not a refusal, for an app without an apple block", async () => {
		const err = await rejection(verify(testApp(TEST_APPS.keyed.id), { productId: "premium_lifetime", transactionId: "1000000000000001" }));
		expect(err).toBeInstanceOf(NotConfigured);
		expect((err as Error).message).toContain("apps[].apple");
	});
});
