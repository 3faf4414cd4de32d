import { env } from "cloudflare:workers";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createTrustStore } from "../src/apple/roots";
import { verifyAppleSignedData } from "../src/apple/signed-data";
import { APPLE_ISSUER_ID, APPLE_SAMPLE, APPLE_SANDBOX, APPLE_TEST_APPS } from "./support/apple-fixtures.ts";
import { appleBearerToken, appleEmulator, testApp, testConfig, type CreatedAppleTransaction } from "./support/apple-service.ts";
import { generateEcKeyPair } from "./support/keys.ts";
import { emulator, json } from "./support/service.ts";

/**
 * The store emulator's App Store half, spoken to directly: it must refuse what Apple refuses, or the service's
 * tests against it prove nothing.
 */

const base = () => env.TEST_EMULATOR_URL;
const sampleKey = () => testApp(APPLE_SAMPLE.appId).apple!.api!.privateKey;

function sampleToken(overrides: Partial<Parameters<typeof appleBearerToken>[0]> = {}) {
	return appleBearerToken({ privateKeyPem: sampleKey(), keyId: APPLE_SAMPLE.keyId, issuerId: APPLE_ISSUER_ID, bundleId: APPLE_SAMPLE.bundleId, ...overrides });
}

async function getTransaction(id: string, token: string | undefined, environment: "production" | "sandbox" = "production") {
	return fetch(`${base()}/apple/${environment}/inApps/v1/transactions/${id}`, {
		headers: { accept: "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
	});
}

async function expectBare401(response: Response) {
	expect(response.status).toBe(401);
	expect(await response.text()).toBe("");
}

describe("the App Store Server API bearer token check", () => {
	it("accepts a token made as Apple documents it", async () => {
		const tx = await appleEmulator.createTransaction();
		const response = await getTransaction(tx.transactionId, await sampleToken());
		expect(response.status).toBe(200);
		expect(await json(response)).toEqual({ signedTransactionInfo: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/) });
	});

	it("answers a bare 401 without a token", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectBare401(await getTransaction(tx.transactionId, undefined));
	});

	it("refuses an expired token", async () => {
		const tx = await appleEmulator.createTransaction();
		const iat = Math.floor(Date.now() / 1000) - 3600;
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ iat, exp: iat + 600 })));
	});

	it("refuses a token that lives longer than 60 minutes, though not yet expired", async () => {
		const tx = await appleEmulator.createTransaction();
		const iat = Math.floor(Date.now() / 1000);
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ iat, exp: iat + 3601 })));
		// The limit itself is allowed: the refusal above is about the lifetime, not the shape.
		expect((await getTransaction(tx.transactionId, await sampleToken({ iat, exp: iat + 3600 }))).status).toBe(200);
	});

	it("refuses a token for another audience", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ audience: "appstoreconnect-v2" })));
	});

	it("refuses a token whose bid is not an app of that key", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ bundleId: APPLE_SANDBOX.bundleId })));
	});

	it("refuses a token with another issuer id", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ issuerId: crypto.randomUUID() })));
	});

	it("refuses a token signed by another key under a registered key id", async () => {
		const tx = await appleEmulator.createTransaction();
		const stranger = await generateEcKeyPair();
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ privateKeyPem: stranger.privateKeyPem })));
	});

	it("refuses a token naming a key id it does not know", async () => {
		const tx = await appleEmulator.createTransaction();
		await expectBare401(await getTransaction(tx.transactionId, await sampleToken({ keyId: "UNKNOWNKEY" })));
	});
});

describe("Get Transaction Info at the emulator", () => {
	it("answers Apple's 404 body for an unknown transaction id", async () => {
		const response = await getTransaction("1000000999999999", await sampleToken());
		expect(response.status).toBe(404);
		expect(await json(response)).toEqual({ errorCode: 4040010, errorMessage: "Transaction id not found." });
	});

	it("answers 400 with 4000006 for an id that is not a transaction id", async () => {
		const response = await getTransaction("not-a-number", await sampleToken());
		expect(response.status).toBe(400);
		expect(await json(response)).toEqual({ errorCode: 4000006, errorMessage: "Invalid transaction id." });
	});

	it("keeps a transaction in its one environment", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_SANDBOX.bundleId, environment: "Sandbox" });
		const token = () =>
			appleBearerToken({
				privateKeyPem: testApp(APPLE_SANDBOX.appId).apple!.api!.privateKey,
				keyId: APPLE_SANDBOX.keyId,
				issuerId: APPLE_ISSUER_ID,
				bundleId: APPLE_SANDBOX.bundleId,
			});
		expect((await getTransaction(tx.transactionId, await token(), "production")).status).toBe(404);
		expect((await getTransaction(tx.transactionId, await token(), "sandbox")).status).toBe(200);
	});

	it("does not show one app another app's transaction", async () => {
		const other = await appleEmulator.createTransaction({ bundleId: APPLE_TEST_APPS.refresh.bundleId });
		const response = await getTransaction(other.transactionId, await sampleToken());
		expect(response.status).toBe(404);
		expect(await json(response)).toMatchObject({ errorCode: 4040010 });
	});

	it("signs with the test leaf, x5c = [leaf, intermediate, root], and the payload is the current state", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "coins_100", type: "Consumable", quantity: 3 });
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		const { signedTransactionInfo } = await json(await getTransaction(tx.transactionId, await sampleToken()));
		const header = decodeProtectedHeader(signedTransactionInfo);
		expect(header.alg).toBe("ES256");
		expect(header.kid).toBeUndefined();
		expect(header.x5c).toHaveLength(3);
		expect(header.x5c?.[2]).toBe(testConfig().appleRootCertificates?.[0]);
		const verified = await verifyAppleSignedData(signedTransactionInfo, { roots: createTrustStore(testConfig().appleRootCertificates), allowLocalTesting: false });
		expect(verified.payload).toMatchObject({
			transactionId: tx.transactionId,
			originalTransactionId: tx.transactionId,
			bundleId: APPLE_SAMPLE.bundleId,
			productId: "coins_100",
			type: "Consumable",
			quantity: 3,
			environment: "Production",
			revocationType: "REFUND_FULL",
			revocationReason: 0,
			revocationDate: expect.any(Number),
		});
	});

	it("answers an injected Apple error with Apple's status, body and a Retry-After in UNIX milliseconds", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode: 4290000, retryAfterSeconds: 30 });
		const response = await getTransaction(tx.transactionId, await sampleToken());
		expect(response.status).toBe(429);
		expect(await json(response)).toEqual({ errorCode: 4290000, errorMessage: "Rate limit exceeded." });
		const retryAt = Number(response.headers.get("retry-after"));
		expect(retryAt).toBeGreaterThan(Date.now() + 25_000);
		expect(retryAt).toBeLessThan(Date.now() + 35_000);
		// Used once, then gone.
		expect((await getTransaction(tx.transactionId, await sampleToken())).status).toBe(200);
	});

	it("counts the calls it received, by endpoint and transaction", async () => {
		const tx = await appleEmulator.createTransaction();
		await getTransaction(tx.transactionId, await sampleToken());
		await getTransaction(tx.transactionId, undefined);
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(2);
	});
});

describe("Get All Subscription Statuses at the emulator", () => {
	async function statuses(tx: CreatedAppleTransaction) {
		const response = await fetch(`${base()}/apple/production/inApps/v1/subscriptions/${tx.transactionId}`, { headers: { authorization: `Bearer ${await sampleToken()}` } });
		expect(response.status).toBe(200);
		return json(response);
	}

	it("reports the subscription's latest transaction and its status", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: -60 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 3600 });
		const body = await statuses(first);
		expect(body).toMatchObject({ environment: "Production", bundleId: APPLE_SAMPLE.bundleId, appAppleId: APPLE_SAMPLE.appAppleId });
		const [group] = body.data;
		expect(group.lastTransactions).toHaveLength(1);
		expect(group.lastTransactions[0]).toMatchObject({ status: 1, originalTransactionId: first.transactionId });
		const verified = await verifyAppleSignedData(group.lastTransactions[0].signedTransactionInfo, { roots: createTrustStore(testConfig().appleRootCertificates), allowLocalTesting: false });
		expect(verified.payload.transactionId).toBe(renewal.transactionId);
	});

	it("reports 2 once expired and 5 once revoked", async () => {
		const sub = await appleEmulator.createSubscription();
		await appleEmulator.updateTransaction(sub.transactionId, { expiresInSeconds: -1 });
		expect((await statuses(sub)).data[0].lastTransactions[0].status).toBe(2);
		await appleEmulator.updateTransaction(sub.transactionId, { revoked: true });
		expect((await statuses(sub)).data[0].lastTransactions[0].status).toBe(5);
	});
});

describe("verifyReceipt at the emulator", () => {
	async function verifyReceipt(environment: "production" | "sandbox", body: unknown) {
		const response = await fetch(`${base()}/apple/receipt/${environment}/verifyReceipt`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
		expect(response.status).toBe(200);
		return json(response);
	}
	const { receiptOnly } = APPLE_TEST_APPS;

	it("answers status 0 with the receipt's transactions, dates as decimal strings", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId, productId: "coins_100", type: "Consumable" });
		const body = await verifyReceipt("production", { "receipt-data": tx.receipt, password: receiptOnly.sharedSecret });
		expect(body).toMatchObject({ status: 0, environment: "Production", receipt: { bundle_id: receiptOnly.bundleId } });
		expect(body.receipt.in_app).toEqual([
			expect.objectContaining({ transaction_id: tx.transactionId, product_id: "coins_100", quantity: "1", purchase_date_ms: expect.stringMatching(/^\d+$/) }),
		]);
	});

	it("answers 21007 for a Sandbox receipt sent to Production, and 21008 the other way round", async () => {
		const sandbox = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId, environment: "Sandbox" });
		expect((await verifyReceipt("production", { "receipt-data": sandbox.receipt, password: receiptOnly.sharedSecret })).status).toBe(21007);
		expect((await verifyReceipt("sandbox", { "receipt-data": sandbox.receipt, password: receiptOnly.sharedSecret })).status).toBe(0);
		const production = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		expect((await verifyReceipt("sandbox", { "receipt-data": production.receipt, password: receiptOnly.sharedSecret })).status).toBe(21008);
	});

	it("answers 21004 for a wrong shared secret", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		expect((await verifyReceipt("production", { "receipt-data": tx.receipt, password: "not-the-secret-0123456789" })).status).toBe(21004);
	});

	it("answers 21003 for a receipt Apple did not issue, and 21002 for one that is not base64", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		const edited = `${tx.receipt.slice(0, 40)}${tx.receipt[40] === "A" ? "B" : "A"}${tx.receipt.slice(41)}`;
		expect((await verifyReceipt("production", { "receipt-data": edited, password: receiptOnly.sharedSecret })).status).toBe(21003);
		expect((await verifyReceipt("production", { "receipt-data": "%%%", password: receiptOnly.sharedSecret })).status).toBe(21002);
	});

	it("answers an injected status, found by the receipt's transaction id", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: receiptOnly.bundleId });
		await appleEmulator.error({ match: tx.transactionId, receiptStatus: 21005 });
		expect((await verifyReceipt("production", { "receipt-data": tx.receipt, password: receiptOnly.sharedSecret })).status).toBe(21005);
		expect(await emulator.calls(tx.transactionId, "apple.verifyReceipt")).toBe(1);
	});
});
