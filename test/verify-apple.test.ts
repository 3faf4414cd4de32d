import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appAccountTokenForUser } from "../src/apple/app-account-token";
import { findPurchase } from "../src/ledger/history";
import { base64Url } from "./support/pki.ts";
import { APPLE_TEST_APPS } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { bearer, call, emulator, json, uniqueUser } from "./support/service.ts";

/** The App Store through the same contract, claim and history path as Google Play. */

async function verify(body: unknown) {
	const response = await call("POST", "/verify", body);
	return { status: response.status, body: await json(response), headers: response.headers };
}

/** A /verify body for premium_lifetime whose App Store evidence is `data`, whatever it is. */
function rawEvidenceBody(data: string) {
	return {
		userIdentifier: uniqueUser(),
		appId: 1234,
		purchaseDetails: {
			verificationData: { serverVerificationData: data, localVerificationData: "", source: "app_store" },
			productID: "premium_lifetime",
			purchaseID: "1000000000000001",
			status: "purchased",
		},
	};
}

describe("a StoreKit 2 signed transaction sent to /verify", () => {
	it("completes for its buyer and is recorded, with no call to Apple", async () => {
		const tx = await appleEmulator.createTransaction();
		const user = uniqueUser();
		expect((await verify(appleVerifyBody(tx, { userIdentifier: user }))).body).toEqual({ complete_purchase: true });
		expect(await findPurchase(env.DB, "app_store", tx.transactionId)).toMatchObject({
			userId: user,
			productId: "premium_lifetime",
			kind: "non_consumable",
			environment: "Production",
			originalTransactionId: tx.originalTransactionId,
		});
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBe(0);
	});

	it("completes for an active subscription and records its expiry", async () => {
		const tx = await appleEmulator.createSubscription({ expiresInSeconds: 3600 });
		expect((await verify(appleVerifyBody(tx))).body).toEqual({ complete_purchase: true });
		expect((await findPurchase(env.DB, "app_store", tx.transactionId))?.expiresAt).toBe(tx.expiresDate);
	});

	it("is refused when tampered with", async () => {
		const tx = await appleEmulator.createTransaction();
		const [header, payload, signature] = tx.signedTransaction.split(".") as [string, string, string];
		const claims = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
		const forged = base64Url(JSON.stringify({ ...claims, productId: "premium_monthly" }));
		const body = appleVerifyBody({ ...tx, signedTransaction: `${header}.${forged}.${signature}`, productId: "premium_monthly" });
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "invalid_signature" });
	});

	it("is refused when claimed as another product", async () => {
		const tx = await appleEmulator.createTransaction({ productId: "coins_100", type: "Consumable" });
		expect((await verify(appleVerifyBody(tx, { productID: "premium_lifetime" }))).body).toMatchObject({ complete_purchase: false, code: "product_mismatch" });
	});

	it("is refused once refunded", async () => {
		const tx = await appleEmulator.createTransaction({ revoked: "REFUND_FULL" });
		expect((await verify(appleVerifyBody(tx))).body).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("is refused for an expired subscription", async () => {
		const tx = await appleEmulator.createSubscription({ expiresInSeconds: -60 });
		expect((await verify(appleVerifyBody(tx))).body).toMatchObject({ complete_purchase: false, code: "expired" });
	});

	it("is refused as a Sandbox purchase by an app that accepts only Production", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox" });
		expect((await verify(appleVerifyBody(tx))).body).toMatchObject({ complete_purchase: false, code: "sandbox_not_accepted" });
	});
});

describe("App Store evidence that is not evidence", () => {
	it.each([
		["a JWS whose parts are not base64url", "a.b.c"],
		["a JWS with no algorithm", "e30.e30.e30"],
		["a truncated PKCS#7 receipt", "MIAGCSqGSIb3DQEHAqCAMIACAQEx"],
		["100 KB of nothing", "x".repeat(100_000)],
	])("is refused with a reason, never a 500: %s", async (_, data) => {
		const { status, body: answer } = await verify(rawEvidenceBody(data));
		expect(status).toBe(200);
		expect(answer).toMatchObject({ complete_purchase: false, code: expect.stringMatching(/^(invalid_purchase|invalid_signature)$/) });
	});

	it.each([
		["text that is neither a JWS nor base64", "not a receipt!!"],
		["a signed transaction longer than any Apple signs", `${"a".repeat(9000)}.${"b".repeat(9000)}.c`],
		["a receipt longer than the limit", "A".repeat(300 * 1024)],
	])("is a 400 naming the field, before anything is asked: %s", async (_, data) => {
		const { status, body: answer } = await verify(rawEvidenceBody(data));
		expect(status).toBe(400);
		expect(answer.error).toMatchObject({ code: "invalid_request", field: "purchaseDetails.verificationData.serverVerificationData" });
	});
});

describe("a replayed App Store transaction", () => {
	it("completes again for the same user and is refused for another (receipt sharing)", async () => {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser("owner");
		expect((await verify(appleVerifyBody(tx, { userIdentifier: owner }))).body.complete_purchase).toBe(true);
		expect((await verify(appleVerifyBody(tx, { userIdentifier: owner }))).body.complete_purchase).toBe(true);
		expect((await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser("thief") }))).body).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		// Sharing the receipt instead of the JWS changes nothing: the claim is per transaction.
		expect((await verify(appleVerifyBody(tx, { evidence: "receipt", userIdentifier: uniqueUser("thief") }))).body.code).toBe("owned_by_another_user");
	});

	it("resolves 100 concurrent claims by two users to exactly one owner and one history row", async () => {
		const tx = await appleEmulator.createTransaction();
		const users = [uniqueUser("a"), uniqueUser("b")];
		const answers = await Promise.all(
			Array.from({ length: 100 }, async (_, i) => {
				const user = users[i % 2]!;
				return { user, granted: (await verify(appleVerifyBody(tx, { userIdentifier: user }))).body.complete_purchase as boolean };
			}),
		);
		const winners = new Set(answers.filter((a) => a.granted).map((a) => a.user));
		expect(winners.size).toBe(1);
		const [owner] = winners;
		expect(answers.filter((a) => a.user !== owner).some((a) => a.granted)).toBe(false);
		const { results } = await env.DB.prepare("SELECT user_id FROM purchases WHERE store = 'app_store' AND transaction_id = ?1").bind(tx.transactionId).all();
		expect(results).toEqual([{ user_id: owner }]);
	});
});

describe("a legacy receipt sent to /verify", () => {
	it("completes for the transaction purchaseID names, confirmed through the App Store Server API", async () => {
		const tx = await appleEmulator.createTransaction();
		expect((await verify(appleVerifyBody(tx, { evidence: "receipt" }))).body).toEqual({ complete_purchase: true });
		expect(await emulator.calls(tx.transactionId, "apple.transactions.get")).toBeGreaterThan(0);
	});

	it("is refused when none of its transactions is the claimed purchase", async () => {
		const tx = await appleEmulator.createTransaction({ account: `acct-${crypto.randomUUID()}` });
		const other = await appleEmulator.createTransaction({ productId: "premium_monthly", type: "Auto-Renewable Subscription", account: `acct-${crypto.randomUUID()}` });
		const body = appleVerifyBody({ ...tx, receipt: other.receipt }, { evidence: "receipt" });
		expect((await verify(body)).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
	});

	it("answers 503, not a false no, when Apple is unavailable", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode: 5000001, times: 2 });
		const { status, body, headers } = await verify(appleVerifyBody(tx, { evidence: "receipt" }));
		expect(status).toBe(503);
		expect(body.error.code).toBe("store_unreachable");
		expect(headers.get("retry-after")).toBeTruthy();
	});

	it("is verified with verifyReceipt for an app that has only a shared secret", async () => {
		const app = APPLE_TEST_APPS.receiptOnly;
		const tx = await appleEmulator.createTransaction({ bundleId: app.bundleId });
		expect((await verify(appleVerifyBody(tx, { evidence: "receipt", appId: app.id }))).body).toEqual({ complete_purchase: true });
		expect(await emulator.calls("", "apple.verifyReceipt")).toBeGreaterThan(0);
	});
});

describe("an appAccountToken bound to another user", () => {
	it("is refused for that other user and completes for the bound one", async () => {
		const app = APPLE_TEST_APPS.accountToken;
		const owner = uniqueUser("bound");
		const tx = await appleEmulator.createTransaction({ bundleId: app.bundleId, appAccountToken: await appAccountTokenForUser(owner) });
		expect((await verify(appleVerifyBody(tx, { appId: app.id, userIdentifier: uniqueUser("other") }))).body).toMatchObject({ complete_purchase: false, code: "user_mismatch" });
		expect((await verify(appleVerifyBody(tx, { appId: app.id, userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
	});
});

describe("POST /v1/purchases/validate for the App Store", () => {
	it("accepts a signed transaction, a transaction id and a receipt, all through one claim", async () => {
		const tx = await appleEmulator.createTransaction();
		const userId = uniqueUser();
		const base = { store: "app_store", userId, productId: "premium_lifetime" };
		const first = await json(await call("POST", "/v1/purchases/validate", { ...base, signedTransaction: tx.signedTransaction }, bearer()));
		expect(first).toMatchObject({ success: true, seen_before: false, purchase: { store: "app_store", transactionId: tx.transactionId, userId } });
		expect(first.data).toMatchObject({ transactionId: tx.transactionId, bundleId: "com.example.iapedge" });
		expect(await json(await call("POST", "/v1/purchases/validate", { ...base, transactionId: tx.transactionId }, bearer()))).toMatchObject({ success: true, seen_before: true });
		expect(await json(await call("POST", "/v1/purchases/validate", { ...base, receipt: tx.receipt, transactionId: tx.transactionId }, bearer()))).toMatchObject({ success: true, seen_before: true });
	});

	it("records a refund made after the grant in the history when Apple reports it (asked for a fresh answer)", async () => {
		const tx = await appleEmulator.createTransaction();
		const userId = uniqueUser();
		const body = { store: "app_store", userId, productId: "premium_lifetime", transactionId: tx.transactionId };
		expect((await json(await call("POST", "/v1/purchases/validate", body, bearer()))).success).toBe(true);
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL" });
		// Without the notification, the ledger still holds Apple's earlier word: a replay within freshness would grant.
		expect(await json(await call("POST", "/v1/purchases/validate", { ...body, fresh: true }, bearer()))).toMatchObject({ success: false, code: "refunded" });
		const history = await json(await call("GET", `/v1/users/${userId}/purchases`, undefined, bearer()));
		expect(history.purchases).toEqual([expect.objectContaining({ transactionId: tx.transactionId, state: "refunded", entitled: false })]);
	});

	it("answers 503 with purchase_provider_reachable false when Apple rate-limits", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.error({ match: tx.transactionId, errorCode: 4290000, times: 2 });
		const response = await call("POST", "/v1/purchases/validate", { store: "app_store", userId: uniqueUser(), productId: "premium_lifetime", transactionId: tx.transactionId }, bearer());
		expect(response.status).toBe(503);
		expect(await json(response)).toMatchObject({ success: false, purchase_provider_reachable: false });
	});

	it.each([
		["signedTransaction", { store: "app_store", userId: "u", productId: "p" }],
		["transactionId", { store: "app_store", userId: "u", productId: "p", transactionId: "abc" }],
	])("answers 400 naming %s", async (field, body) => {
		const response = await call("POST", "/v1/purchases/validate", body, bearer());
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe(field);
	});
});
