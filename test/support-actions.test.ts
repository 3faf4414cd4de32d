import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPurchase } from "../src/ledger/history";
import { buildAppReceipt } from "./support/receipt-builder.ts";
import { APPLE_TEST_APPS } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { SAMPLE_APP, TEST_APPS } from "./support/fixtures.ts";
import { bearer, call, claimedTransaction, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** Support and billing systems: find any purchase, see who holds what evidence holds, move ownership, audited. */

async function verify(body: unknown, query = "") {
	const response = await call("POST", `/verify${query}`, body);
	expect(response.status).toBe(200);
	return (await json(response)) as { complete_purchase: boolean; code?: string };
}

const transferKey = `?key=${TEST_APPS.transfer.verifyKey}`;

describe("GET /v1/purchases/{store}/{transactionId}", () => {
	it("shows the purchase, its owner, the claim's state and the audit trail", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const user = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: user }));
		const response = await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer());
		expect(response.status).toBe(200);
		const body = await json(response);
		expect(body).toMatchObject({
			owner: user,
			purchase: { transactionId: purchase.purchaseToken, orderId: purchase.orderId, state: "active", entitled: true },
			claim: { ownerUserId: user, revoked: false, acknowledgement: expect.stringMatching(/^(pending|done)$/), consumption: "none", historySynced: true },
			audit: [expect.objectContaining({ action: "claim", toUserId: user, actor: "user" })],
			timeline: [],
		});
	});

	it("is 404 for another app's purchase, and for one nobody has seen", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser() }));
		const path = `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`;
		expect((await call("GET", path, undefined, bearer(TEST_APPS.sandbox.apiKey))).status).toBe(404);
		expect((await call("GET", "/v1/purchases/app_store/1000000999999999", undefined, bearer())).status).toBe(404);
		expect((await call("GET", "/v1/purchases/amazon/1", undefined, bearer())).status).toBe(404);
		expect((await call("GET", "/v1/purchases/samsung/1", undefined, bearer())).status).toBe(400);
	});
});

describe("GET /v1/purchases?orderId= and ?originalTransactionId=", () => {
	it("finds purchases by what a store's receipt e-mail or a notification shows", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser() }));
		const byOrder = await json(await call("GET", `/v1/purchases?orderId=${encodeURIComponent(purchase.orderId)}`, undefined, bearer()));
		expect(byOrder.purchases.map((p: { transactionId: string }) => p.transactionId)).toEqual([purchase.purchaseToken]);

		const first = await appleEmulator.createSubscription({ expiresInSeconds: 3600 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 7200 });
		const owner = uniqueUser();
		await verify(appleVerifyBody(first, { userIdentifier: owner }));
		await verify(appleVerifyBody(renewal, { userIdentifier: owner }));
		const byOriginal = await json(await call("GET", `/v1/purchases?originalTransactionId=${first.transactionId}`, undefined, bearer()));
		expect(byOriginal.purchases.map((p: { transactionId: string }) => p.transactionId)).toEqual([first.transactionId, renewal.transactionId]);
	});

	it("wants exactly one of them", async () => {
		const response = await call("GET", "/v1/purchases", undefined, bearer());
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe("orderId");
	});
});

describe("POST /v1/purchases/check", () => {
	it("lists every transaction of a receipt, who holds each, and claims nothing", async () => {
		const account = crypto.randomUUID();
		const a = await appleEmulator.createTransaction({ bundleId: APPLE_TEST_APPS.receiptOnly.bundleId, productId: "premium_lifetime", account });
		const b = await appleEmulator.createTransaction({ bundleId: APPLE_TEST_APPS.receiptOnly.bundleId, productId: "coins_100", type: "Consumable", account });
		const holder = uniqueUser();
		await verify(appleVerifyBody(a, { userIdentifier: holder, appId: APPLE_TEST_APPS.receiptOnly.id }));
		const response = await call("POST", "/v1/purchases/check", { store: "app_store", receipt: b.receipt }, bearer(APPLE_TEST_APPS.receiptOnly.apiKey));
		expect(response.status).toBe(200);
		const body = await json(response);
		expect(body.valid).toBe(true);
		const byId = Object.fromEntries(body.transactions.map((t: { transactionId: string }) => [t.transactionId, t]));
		expect(byId[a.transactionId]).toMatchObject({ productId: "premium_lifetime", owner: holder, entitled: true });
		expect(byId[b.transactionId]).toMatchObject({ productId: "coins_100", owner: null });
		// Nothing was claimed: the unheld transaction has no claim and no history row.
		expect(await claimedTransaction("app_store", b.transactionId)).toBeUndefined();
		expect(await findPurchase(env.DB, "app_store", b.transactionId)).toBeNull();
	});

	it("checks a receipt through the App Store Server API, one look-up per transaction", async () => {
		const account = crypto.randomUUID();
		const a = await appleEmulator.createTransaction({ productId: "premium_lifetime", account });
		const b = await appleEmulator.createSubscription({ account, expiresInSeconds: 3600 });
		const body = await json(await call("POST", "/v1/purchases/check", { store: "app_store", receipt: b.receipt }, bearer()));
		expect(body.transactions.map((t: { transactionId: string }) => t.transactionId).sort()).toEqual([a.transactionId, b.transactionId].sort());
		expect(body.transactions.every((t: { owner: string | null }) => t.owner === null)).toBe(true);
	});

	it("answers a Google token with its state and holder", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const holder = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: holder }));
		const body = await json(await call("POST", "/v1/purchases/check", { store: "google_play", productId: "premium_monthly", purchaseToken: purchase.purchaseToken, type: "subscription" }, bearer()));
		expect(body.transactions).toEqual([expect.objectContaining({ transactionId: purchase.purchaseToken, owner: holder, state: "active" })]);
	});

	it("says what is wrong with evidence that holds no purchase, as a verdict", async () => {
		const receipt = buildAppReceipt({ bundleId: "com.example.other", inApp: [{ transactionId: "1000000444444444", productId: "premium_lifetime" }] });
		const body = await json(await call("POST", "/v1/purchases/check", { store: "app_store", receipt }, bearer()));
		expect(body).toMatchObject({ valid: false, code: "app_mismatch", transactions: [] });
	});
});

describe("transfer on restore", () => {
	it("moves a Google purchase to the user who restores it, and the previous owner loses access at once", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.transfer.packageName });
		const first = uniqueUser("first");
		const second = uniqueUser("second");
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: first, appId: TEST_APPS.transfer.id }), transferKey)).toEqual({ complete_purchase: true });
		// Presented as a new purchase by someone else: still refused (that is receipt sharing).
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: second, appId: TEST_APPS.transfer.id }), transferKey)).toMatchObject({ code: "owned_by_another_user" });
		// Restored by someone else: moved.
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: second, appId: TEST_APPS.transfer.id, status: "restored" }), transferKey)).toEqual({ complete_purchase: true });
		const access = (user: string) => call("GET", `/v1/users/${user}/access/premium`, undefined, bearer(TEST_APPS.transfer.apiKey)).then(json);
		expect((await access(second)).access).toBe(true);
		expect((await access(first)).access).toBe(false);
		const audit = (await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer(TEST_APPS.transfer.apiKey)))).audit;
		expect(audit.map((a: { action: string }) => a.action)).toEqual(["claim", "restore_transfer"]);
		expect(audit[1]).toMatchObject({ fromUserId: first, toUserId: second, actor: "user" });
	});

	it("moves a whole App Store subscription when one of its renewals is restored through validate", async () => {
		const first = await appleEmulator.createSubscription({ bundleId: "com.example.transfer", expiresInSeconds: 3600 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 7200 });
		const [a, b] = [uniqueUser("a"), uniqueUser("b")];
		const validate = (user: string, tx: typeof first, restore?: boolean) =>
			call("POST", "/v1/purchases/validate", { store: "app_store", userId: user, productId: "premium_monthly", signedTransaction: tx.signedTransaction, ...(restore === undefined ? {} : { restore }) }, bearer(TEST_APPS.transfer.apiKey)).then(json);
		expect((await validate(a, first)).success).toBe(true);
		expect(await validate(b, renewal)).toMatchObject({ success: false, code: "owned_by_another_user" });
		expect(await validate(b, renewal, true)).toMatchObject({ success: true, transferred_from: a });
		expect((await findPurchase(env.DB, "app_store", first.transactionId))?.userId).toBe(b);
		expect((await findPurchase(env.DB, "app_store", renewal.transactionId))?.userId).toBe(b);
	});

	it("is not what an app with the default policy does: a restore by another user is refused", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser() }));
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser(), status: "restored" }))).toMatchObject({ code: "owned_by_another_user" });
	});
});

describe("support transfer and revoke", () => {
	it("transfer moves ownership, audited with the API key's id (never the key) and the reason", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const [from, to] = [uniqueUser("from"), uniqueUser("to")];
		await verify(googleVerifyBody(purchase, { userIdentifier: from }));
		const path = `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`;
		const moved = await call("POST", `${path}/transfer`, { toUserId: to, reason: "ticket 4711: new account" }, bearer());
		expect(moved.status).toBe(200);
		expect(await json(moved)).toMatchObject({ fromUserId: from, toUserId: to, action: "transfer" });
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: to }))).toEqual({ complete_purchase: true });
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: from }))).toMatchObject({ code: "owned_by_another_user" });
		const audit = (await json(await call("GET", path, undefined, bearer()))).audit;
		expect(audit.at(-1)).toMatchObject({ action: "transfer", fromUserId: from, toUserId: to, actor: `api-key:${SAMPLE_APP.id}:0`, reason: "ticket 4711: new account" });
		expect(JSON.stringify(audit)).not.toContain(SAMPLE_APP.apiKey);
	});

	it("revoke takes it from everyone until support transfers it again", async () => {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser();
		await verify(appleVerifyBody(tx, { userIdentifier: owner }));
		const path = `/v1/purchases/app_store/${tx.transactionId}`;
		expect((await call("POST", `${path}/revoke`, { reason: "chargeback outside the store" }, bearer())).status).toBe(200);
		expect(await verify(appleVerifyBody(tx, { userIdentifier: owner }))).toMatchObject({ complete_purchase: false, code: "revoked", reason: expect.stringMatching(/^support revoked this purchase/) });
		expect(await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }))).toMatchObject({ complete_purchase: false, code: "revoked" });
		expect((await findPurchase(env.DB, "app_store", tx.transactionId))?.userId).toBeNull();
		await call("POST", `${path}/transfer`, { toUserId: owner, reason: "resolved" }, bearer());
		expect(await verify(appleVerifyBody(tx, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	});

	it("asks for a reason and a valid user id, and answers 404 for an unknown purchase", async () => {
		const tx = await appleEmulator.createTransaction();
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }));
		const path = `/v1/purchases/app_store/${tx.transactionId}`;
		expect((await json(await call("POST", `${path}/transfer`, { toUserId: "x" }, bearer()))).error.field).toBe("reason");
		expect((await json(await call("POST", `${path}/transfer`, { toUserId: " padded ", reason: "r" }, bearer()))).error.field).toBe("toUserId");
		expect((await call("POST", "/v1/purchases/app_store/1000000999999998/revoke", { reason: "r" }, bearer())).status).toBe(404);
	});

	it("racing 50 concurrent claims by two users, ends with one owner that D1 and the audit agree on", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		const [a, b, support] = [uniqueUser("a"), uniqueUser("b"), uniqueUser("support")];
		await verify(googleVerifyBody(purchase, { userIdentifier: a }));
		const path = `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`;
		const claims = Array.from({ length: 50 }, (_, i) => verify(googleVerifyBody(purchase, { userIdentifier: i % 2 ? a : b })));
		const move = call("POST", `${path}/transfer`, { toUserId: support, reason: "race" }, bearer());
		await Promise.all([...claims, move]);
		const held = await claimedTransaction("google_play", purchase.purchaseToken);
		const row = await findPurchase(env.DB, "google_play", purchase.purchaseToken);
		expect(held?.userId).toBe(support);
		expect(row?.userId).toBe(support);
		const audit = (await json(await call("GET", path, undefined, bearer()))).audit as { action: string; toUserId: string }[];
		expect(audit.map((e) => e.action)).toEqual(["claim", "transfer"]);
		expect(audit.at(-1)?.toUserId).toBe(support);
	});
});

describe("support re-verify (POST /v1/purchases/{store}/{transactionId}/reverify)", () => {
	const reverify = (token: string, reason: string) => call("POST", `/v1/purchases/google_play/${encodeURIComponent(token)}/reverify`, { reason }, bearer());
	const auditOf = async (token: string) => (await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(token)}`, undefined, bearer()))).audit as Record<string, unknown>[];

	it("applies what the store says now, and audits who asked, why and what came of it", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const user = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: user }));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -60, notify: false });
		const response = await reverify(purchase.purchaseToken, "customer says it lapsed");
		expect(response.status).toBe(200);
		expect(await json(response)).toMatchObject({ status: "applied", before: "active", after: "expired" });
		const again = await reverify(purchase.purchaseToken, "checking twice");
		expect(await json(again)).toMatchObject({ status: "unchanged", before: "expired", after: "expired" });
		expect(await auditOf(purchase.purchaseToken)).toEqual([
			expect.objectContaining({ action: "claim", outcome: null }),
			expect.objectContaining({ action: "reverify", fromUserId: user, toUserId: user, actor: `api-key:${SAMPLE_APP.id}:0`, reason: "customer says it lapsed", outcome: "applied" }),
			expect.objectContaining({ action: "reverify", reason: "checking twice", outcome: "unchanged" }),
		]);
	});

	it("changes nothing when the store no longer vouches for the purchase, and audits that too", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const user = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: user }));
		await emulator.fault({ match: purchase.purchaseToken, mode: "error", status: 410 });
		const response = await reverify(purchase.purchaseToken, "chargeback e-mail");
		expect(response.status).toBe(200);
		const answer = await json(response);
		expect(answer).toMatchObject({ status: "refused", before: "active", code: expect.any(String) });
		const detail = await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer()));
		expect(detail).toMatchObject({ owner: user, purchase: { state: "active" } });
		expect(detail.audit.at(-1)).toMatchObject({ action: "reverify", fromUserId: user, toUserId: user, reason: "chargeback e-mail", outcome: `refused: ${answer.code}` });
	});
});

describe("a padded user id", () => {
	it("is refused on every route, naming the field, rather than stored under one name and looked up under another", async () => {
		const tx = await appleEmulator.createTransaction();
		expect((await json(await call("POST", "/verify", appleVerifyBody(tx, { userIdentifier: " user " })))).error.field).toBe("userIdentifier");
		expect((await json(await call("GET", `/v1/users/${encodeURIComponent(" user ")}/purchases`, undefined, bearer()))).error.field).toBe("userId");
		for (const bad of ["a\u0000b", "\ud800", "x".repeat(257), ""]) {
			const response = await call("POST", "/v1/purchases/validate", { store: "app_store", userId: bad, productId: "premium_lifetime", signedTransaction: tx.signedTransaction }, bearer());
			expect(response.status).toBe(400);
			expect((await json(response)).error.field).toBe("userId");
		}
	});
});
