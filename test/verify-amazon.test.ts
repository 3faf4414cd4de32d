import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPurchase } from "../src/ledger/history";
import { AMAZON_PACKAGES, AMAZON_WRONG_SECRET_APP } from "./support/amazon-fixtures.ts";
import { amazonEmulator, amazonSecrets, amazonValidateBody, amazonVerifyBody, type CreatedAmazonReceipt } from "./support/amazon-service.ts";
import { capturedLogLines } from "./support/log-capture.ts";
import { TEST_APPS } from "./support/fixtures.ts";
import { bearer, call, emulator, json, uniqueUser } from "./support/service.ts";

/** Amazon Appstore purchases on /verify and /v1/purchases/validate, verified with the emulator playing RVS. */

const DAY = 24 * 3600 * 1000;

async function verify(body: unknown) {
	const response = await call("POST", "/verify", body);
	return { status: response.status, headers: response.headers, body: await json(response) };
}

async function validate(body: unknown, apiKey?: string) {
	const response = await call("POST", "/v1/purchases/validate", body, bearer(apiKey));
	return { status: response.status, headers: response.headers, body: await json(response) };
}

const history = (receiptId: string) => findPurchase(env.DB, "amazon", receiptId);

describe("an Amazon purchase of each type", () => {
	it("an entitlement completes for its buyer and is recorded as a non-consumable", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const user = uniqueUser();
		expect(await verify(amazonVerifyBody(receipt, { userIdentifier: user }))).toMatchObject({ status: 200, body: { complete_purchase: true } });
		expect(await history(receipt.receiptId)).toMatchObject({
			store: "amazon",
			userId: user,
			productId: "premium_lifetime",
			kind: "non_consumable",
			environment: "Production",
			state: "active",
			subscriptionId: null,
			orderId: null,
			expiresAt: null,
		});
	});

	it("a consumable is recorded as one, with its quantity", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "coins_100", type: "consumable", quantity: 1 });
		expect((await verify(amazonVerifyBody(receipt))).body).toEqual({ complete_purchase: true });
		expect(await history(receipt.receiptId)).toMatchObject({ kind: "consumable", state: "active", quantity: 1 });
	});

	it("a subscription runs until its renewal date, owned as a whole by its receipt", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", expiresInSeconds: 3600 });
		const { body } = await validate(amazonValidateBody(receipt, uniqueUser()));
		expect(body).toMatchObject({
			success: true,
			purchase: { store: "amazon", kind: "subscription", state: "active", expiresAt: receipt.renewalDate, willRenew: true, subscriptionId: receipt.receiptId, transactionId: receipt.receiptId },
			// The store's answer as received, term SKU included.
			data: { receiptId: receipt.receiptId, productType: "SUBSCRIPTION", termSku: receipt.termSku, renewalDate: receipt.renewalDate },
		});
	});

	it("a subscription whose renewal is off still grants until the term ends (canceled), and is refused after", async () => {
		const running = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", autoRenew: false, expiresInSeconds: 3600 });
		expect((await verify(amazonVerifyBody(running))).body).toEqual({ complete_purchase: true });
		expect(await history(running.receiptId)).toMatchObject({ state: "canceled", willRenew: false, expiresAt: running.cancelDate });
		const ended = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", autoRenew: false, expiresInSeconds: -60 });
		expect((await verify(amazonVerifyBody(ended))).body).toMatchObject({ complete_purchase: false, code: "expired" });
	});

	it("a subscription in its grace period still grants, and says until when", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { gracePeriod: { seconds: 3 * 24 * 3600 }, notify: false });
		expect((await verify(amazonVerifyBody(receipt))).body).toEqual({ complete_purchase: true });
		const row = await history(receipt.receiptId);
		expect(row).toMatchObject({ state: "in_grace_period" });
		expect(row?.graceExpiresAt).toBeGreaterThan(Date.now() + 2 * DAY);
	});

	it("a cancelled order is refused as refunded", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { cancel: true, notify: false });
		expect((await verify(amazonVerifyBody(receipt))).body).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("is refused for another product than the receipt's; the term SKU names the subscription too", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		expect((await verify(amazonVerifyBody(receipt, { productID: "premium_lifetime" }))).body).toMatchObject({ complete_purchase: false, code: "product_mismatch" });
		expect((await verify(amazonVerifyBody(receipt, { productID: receipt.termSku! }))).body).toEqual({ complete_purchase: true });
	});
});

describe("RVS's answers", () => {
	it("400 (an unknown receipt id) is a refusal with Amazon's reason", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const { body } = await validate(amazonValidateBody({ ...receipt, receiptId: `${receipt.receiptId}x` }, uniqueUser()));
		expect(body).toMatchObject({ success: false, purchase_provider_reachable: true, code: "invalid_purchase", message: expect.stringContaining("RVS 400"), data: { status: false, message: "Invalid receiptID" } });
	});

	it("497 (a user id the receipt is not for) is a refusal; a user id holding = + / : reaches RVS intact", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", userId: "someone=else+with/odd:chars==" });
		expect((await verify(amazonVerifyBody(receipt))).body).toEqual({ complete_purchase: true });
		const other = { ...receipt, localVerificationData: JSON.stringify({ userId: "someone=else+with/odd" }) };
		expect((await verify(amazonVerifyBody(other))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase", reason: expect.stringContaining("RVS 497") });
	});

	it("a replay by its owner is answered from the ledger without asking RVS; one naming another Amazon user asks RVS", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const owner = uniqueUser();
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
		const calls = await emulator.calls(receipt.receiptId, "amazon.rvs");
		expect(calls).toBe(1);
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs")).toBe(calls);
		const otherAmazonUser = { ...receipt, localVerificationData: JSON.stringify({ userId: "another-amazon-user" }) };
		expect((await verify(amazonVerifyBody(otherAmazonUser, { userIdentifier: owner }))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs")).toBe(calls + 1);
	});

	it("410 (a receipt no longer valid) is refused as canceled", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { gone: true });
		expect((await verify(amazonVerifyBody(receipt))).body).toMatchObject({ complete_purchase: false, code: "canceled", reason: expect.stringContaining("410") });
	});

	it("496 (this deployment's shared secret refused) is 503 misconfigured naming the field, never a refusal, and told to the operator once", async () => {
		const from = capturedLogLines().length;
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_WRONG_SECRET_APP.packageName });
		await validate(amazonValidateBody(receipt, uniqueUser()), AMAZON_WRONG_SECRET_APP.apiKey);
		const { status, headers, body } = await validate(amazonValidateBody(receipt, uniqueUser()), AMAZON_WRONG_SECRET_APP.apiKey);
		expect(status).toBe(503);
		expect(headers.get("retry-after")).toMatch(/^\d+$/);
		expect(body.error).toMatchObject({ code: "misconfigured", message: expect.stringContaining("apps[].amazon.sharedSecret") });
		expect(await history(receipt.receiptId)).toBeNull();
		expect(capturedLogLines().slice(from).filter((line) => line.includes("amazon_shared_secret_refused"))).toHaveLength(1);
	});

	it.each([
		["a 500", { mode: "error", status: 500 }],
		["a 503", { mode: "error", status: 503 }],
		["a 429", { mode: "error", status: 429 }],
		["an answer that is not JSON", { mode: "garbage" }],
		["no answer in time", { mode: "slow", delayMs: 3_000 }],
	] as const)("%s is an outage: 503 with Retry-After and purchase_provider_reachable false, nothing recorded", async (_what, fault) => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await emulator.fault({ match: receipt.receiptId, ...fault });
		const { status, headers, body } = await validate(amazonValidateBody(receipt, uniqueUser()));
		expect(status).toBe(503);
		expect(headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
		expect(body).toMatchObject({ success: false, purchase_provider_reachable: false, error: { code: "store_unreachable" } });
		expect(await history(receipt.receiptId)).toBeNull();
		// The same request once Amazon answers again.
		expect((await validate(amazonValidateBody(receipt, uniqueUser()))).body).toMatchObject({ success: true });
	});

	it("an answer of a shape this service does not read is an outage, not a half-read yes", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await emulator.fault({ match: receipt.receiptId, mode: "error", status: 200 });
		expect((await validate(amazonValidateBody(receipt, uniqueUser()))).status).toBe(503);
	});
});

describe("the Sandbox policy for Amazon", () => {
	it("refuses a test purchase (testTransaction, Live App Testing) to an app that does not accept them, and records nothing", async () => {
		for (const flags of [{ test: true }, { beta: true }]) {
			const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", ...flags });
			expect((await verify(amazonVerifyBody(receipt))).body).toMatchObject({ complete_purchase: false, code: "sandbox_not_accepted" });
			expect(await history(receipt.receiptId)).toBeNull();
		}
	});

	it("grants an App Tester receipt through the RVS Cloud Sandbox to an app that accepts Sandbox, recorded as Sandbox", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_PACKAGES.sandbox, sandbox: true });
		const user = uniqueUser();
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: user, appId: TEST_APPS.sandbox.id }))).body).toEqual({ complete_purchase: true });
		expect(await history(receipt.receiptId)).toMatchObject({ environment: "Sandbox", userId: user });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs.sandbox")).toBe(1);
	});

	it("does not find a production receipt in the Cloud Sandbox, nor a sandbox one in production", async () => {
		const production = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_PACKAGES.sandbox });
		expect((await verify(amazonVerifyBody(production, { appId: TEST_APPS.sandbox.id }))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
		const sandbox = await amazonEmulator.createReceipt({ productId: "premium_lifetime", sandbox: true });
		expect((await verify(amazonVerifyBody(sandbox))).body).toMatchObject({ complete_purchase: false, code: "invalid_purchase" });
	});
});

describe("an Amazon receipt presented by two users", () => {
	it("is refused for the second user (receipt sharing); its buyer restores it", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const owner = uniqueUser("owner");
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: uniqueUser("other") }))).body).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: owner, status: "restored" }))).body).toEqual({ complete_purchase: true });
		expect((await history(receipt.receiptId))?.userId).toBe(owner);
	});

	it("claimed 60 times at once by three users ends with one owner, in the claim and in D1", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		const users = [uniqueUser("a"), uniqueUser("b"), uniqueUser("c")];
		const answers = await Promise.all(Array.from({ length: 60 }, async (_, i) => ({ user: users[i % 3]!, body: (await verify(amazonVerifyBody(receipt, { userIdentifier: users[i % 3]! }))).body })));
		const winners = new Set(answers.filter((a) => a.body.complete_purchase).map((a) => a.user));
		expect(winners.size).toBe(1);
		for (const a of answers) if (!winners.has(a.user)) expect(a.body.code).toBe("owned_by_another_user");
		expect((await history(receipt.receiptId))?.userId).toBe([...winners][0]);
	});

	it("moves to the restoring user under transfer_on_restore", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_PACKAGES.transfer });
		const [first, second] = [uniqueUser(), uniqueUser()];
		const body = (user: string, status = "purchased") => amazonVerifyBody(receipt, { userIdentifier: user, appId: TEST_APPS.transfer.id, status });
		const key = `?key=${TEST_APPS.transfer.verifyKey}`;
		expect(await json(await call("POST", `/verify${key}`, body(first)))).toEqual({ complete_purchase: true });
		expect(await json(await call("POST", `/verify${key}`, body(second)))).toMatchObject({ code: "owned_by_another_user" });
		expect(await json(await call("POST", `/verify${key}`, body(second, "restored")))).toEqual({ complete_purchase: true });
		expect((await history(receipt.receiptId))?.userId).toBe(second);
	});
});

describe("POST /v1/purchases/consume for Amazon", () => {
	async function granted(): Promise<{ receipt: CreatedAmazonReceipt; owner: string; body: Record<string, string> }> {
		const receipt = await amazonEmulator.createReceipt({ productId: "coins_100", type: "consumable" });
		const owner = uniqueUser();
		expect((await validate(amazonValidateBody(receipt, owner))).body.success).toBe(true);
		return { receipt, owner, body: { store: "amazon", userId: owner, productId: "coins_100", receiptId: receipt.receiptId } };
	}

	it("consumes once, in the claim (Amazon has no consume call): seen_before on repeats", async () => {
		const { receipt, owner, body } = await granted();
		const rvsCalls = await emulator.calls(receipt.receiptId);
		expect(await json(await call("POST", "/v1/purchases/consume", body, bearer()))).toEqual({ consumed: true, seen_before: false });
		expect(await json(await call("POST", "/v1/purchases/consume", body, bearer()))).toEqual({ consumed: true, seen_before: true });
		expect(await emulator.calls(receipt.receiptId)).toBe(rvsCalls);
		expect(await history(receipt.receiptId)).toMatchObject({ state: "consumed", userId: owner });
		// Presented again after (an app finishing its transaction after a crash), it completes, and stays consumed.
		expect((await verify(amazonVerifyBody(receipt, { userIdentifier: owner }))).body).toEqual({ complete_purchase: true });
		expect((await history(receipt.receiptId))?.state).toBe("consumed");
	});

	it("consumes exactly once when asked 20 times at once", async () => {
		const { body } = await granted();
		const answers = await Promise.all(Array.from({ length: 20 }, async () => json(await call("POST", "/v1/purchases/consume", body, bearer()))));
		expect(answers.filter((a) => a.consumed === true && a.seen_before === false)).toHaveLength(1);
	});

	it("refuses another user (409), a non-consumable (409) and a receipt nobody validated (404), naming the field", async () => {
		const { body } = await granted();
		const other = await call("POST", "/v1/purchases/consume", { ...body, userId: uniqueUser() }, bearer());
		expect([other.status, (await json(other)).error.field]).toEqual([409, "userId"]);
		const entitlement = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const owner = uniqueUser();
		await validate(amazonValidateBody(entitlement, owner));
		const notConsumable = await call("POST", "/v1/purchases/consume", { store: "amazon", userId: owner, productId: "premium_lifetime", receiptId: entitlement.receiptId }, bearer());
		expect([notConsumable.status, (await json(notConsumable)).error.field]).toEqual([409, "productId"]);
		const unknown = await call("POST", "/v1/purchases/consume", { store: "amazon", userId: owner, productId: "coins_100", receiptId: "never-validated" }, bearer());
		expect([unknown.status, (await json(unknown)).error.field]).toEqual([404, "receiptId"]);
	});
});

describe("Amazon evidence on /verify", () => {
	it.each([
		["purchaseDetails.verificationData.localVerificationData", "not json"],
		["purchaseDetails.verificationData.localVerificationData.userId", "{}"],
		["purchaseDetails.verificationData.localVerificationData.userId", '{"userId": "with space"}'],
	])("is a 400 naming %s", async (field, local) => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const response = await call("POST", "/verify", amazonVerifyBody({ ...receipt, localVerificationData: local }));
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe(field);
	});

	it("is a 400 naming the source for an app not configured for Amazon", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const response = await call("POST", "/verify", amazonVerifyBody(receipt, { appId: TEST_APPS.tokenCache.id }));
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe("purchaseDetails.verificationData.source");
	});
});

describe("Amazon purchases in look-ups, checks and entitlements", () => {
	it("POST /v1/purchases/check says what the receipt is and who holds it, claiming nothing", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		const check = async () => json(await call("POST", "/v1/purchases/check", { store: "amazon", receiptId: receipt.receiptId, amazonUserId: receipt.userId }, bearer()));
		expect(await check()).toMatchObject({ valid: true, transactions: [{ store: "amazon", transactionId: receipt.receiptId, entitled: true, owner: null }] });
		const owner = uniqueUser();
		await verify(amazonVerifyBody(receipt, { userIdentifier: owner }));
		expect(await check()).toMatchObject({ valid: true, transactions: [{ owner }] });
	});

	it("GET /v1/purchases/amazon/{receiptId} shows the purchase, its claim and its audit trail", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const owner = uniqueUser();
		await verify(amazonVerifyBody(receipt, { userIdentifier: owner }));
		const response = await call("GET", `/v1/purchases/amazon/${encodeURIComponent(receipt.receiptId)}`, undefined, bearer());
		expect(await json(response)).toMatchObject({
			owner,
			purchase: { store: "amazon", transactionId: receipt.receiptId, entitled: true },
			claim: { key: receipt.receiptId, ownerUserId: owner, acknowledgement: "none", historySynced: true },
			audit: [expect.objectContaining({ action: "claim", toUserId: owner })],
		});
	});

	it("an Amazon subscription grants the app's entitlement", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		const user = uniqueUser();
		await verify(amazonVerifyBody(receipt, { userIdentifier: user }));
		const access = await json(await call("GET", `/v1/users/${user}/access/premium`, undefined, bearer()));
		expect(access).toMatchObject({ access: true, productId: "premium_monthly", expiresAt: receipt.renewalDate });
	});
});

describe("Amazon's shared secret, part of every RVS URL", () => {
	it("appears in no log line, no error and no answer, whatever RVS does (the setup file checks every test file's lines too)", async () => {
		const secrets = amazonSecrets().flatMap((secret) => [secret, encodeURIComponent(secret)]);
		expect(secrets.length).toBeGreaterThan(0);
		const from = capturedLogLines().length;
		const answers: string[] = [];
		const ask = async (receipt: CreatedAmazonReceipt, apiKey?: string) => {
			const response = await call("POST", "/v1/purchases/validate", amazonValidateBody(receipt, uniqueUser()), bearer(apiKey));
			answers.push(`${response.status} ${[...response.headers].join(" ")} ${await response.text()}`);
		};
		for (const fault of [{ mode: "error", status: 500 }, { mode: "error", status: 404 }, { mode: "garbage" }, { mode: "slow", delayMs: 3_000 }] as const) {
			const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
			await emulator.fault({ match: receipt.receiptId, ...fault });
			await ask(receipt);
		}
		await ask(await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_WRONG_SECRET_APP.packageName }), AMAZON_WRONG_SECRET_APP.apiKey);
		const unknown = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await ask({ ...unknown, receiptId: "no-such-receipt" });
		await ask(unknown);

		const lines = capturedLogLines().slice(from);
		// The failures above were logged (an outage, a misconfiguration, the requests themselves)...
		expect(lines.some((line) => line.includes('"api_error"') && line.includes("store_unreachable"))).toBe(true);
		expect(lines.some((line) => line.includes('"api_error"') && line.includes("misconfigured") && line.includes("RVS 496"))).toBe(true);
		// ...without the secret in any of them, or in any answer.
		for (const text of [...lines, ...answers]) for (const secret of secrets) expect(text.includes(secret), text).toBe(false);
		// And whatever is logged is seen: a line logged now is among the captured ones.
		const probe = `capture-probe-${crypto.randomUUID()}`;
		console.log(probe);
		expect(capturedLogLines().slice(from).filter((line) => line.includes(probe))).toHaveLength(1);
	});
});
