import { env } from "cloudflare:workers";
import { generateKeyPair, importPKCS8, SignJWT, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { findPurchase } from "../src/ledger/history";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import worker from "../src/index";
import { SAMPLE_APP } from "./support/fixtures.ts";
import { about, deliverNotifications } from "./support/notifications.ts";
import { bearer, call, claimedTransaction, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** Google Real-time Developer Notifications, as authenticated Pub/Sub pushes, keep the history true after the sale. */

async function verify(body: unknown) {
	return (await json(await call("POST", "/verify", body))) as { complete_purchase: boolean; code?: string };
}

async function deliverAbout(token: string) {
	const delivered = await deliverNotifications({ only: about(token) });
	for (const d of delivered) expect(d.status, JSON.stringify(d.body)).toBe(200);
	return delivered;
}

const history = (token: string) => findPurchase(env.DB, "google_play", token);

async function ownedSubscription(input: { acknowledged?: boolean; expiresInSeconds?: number } = {}) {
	const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true, ...input });
	const owner = uniqueUser("owner");
	expect(await verify(googleVerifyBody(purchase, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	return { purchase, owner };
}

describe("Google notifications, type by type", () => {
	it.each([
		["canceled", "SUBSCRIPTION_CANCELED", "canceled", true],
		["on_hold", "SUBSCRIPTION_ON_HOLD", "on_hold", false],
		["in_grace_period", "SUBSCRIPTION_IN_GRACE_PERIOD", "in_grace_period", true],
		["paused", "SUBSCRIPTION_PAUSED", "paused", false],
	] as const)("a subscription going %s (%s) is refetched from Google and recorded so", async (state, _type, recorded, stillEntitled) => {
		const { purchase, owner } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state });
		const [delivered] = await deliverAbout(purchase.purchaseToken);
		expect(delivered?.body).toMatchObject({ received: true, status: "applied" });
		expect((await history(purchase.purchaseToken))?.state).toBe(recorded);
		const page = await json(await call("GET", `/v1/users/${owner}/purchases`, undefined, bearer()));
		expect(page.purchases[0]).toMatchObject({ transactionId: purchase.purchaseToken, entitled: stillEntitled });
	});

	it("SUBSCRIPTION_EXPIRED: the history says expired and entitled false, nobody verifying it", async () => {
		const { purchase, owner } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -1 });
		await deliverAbout(purchase.purchaseToken);
		const page = await json(await call("GET", `/v1/users/${owner}/purchases`, undefined, bearer()));
		expect(page.purchases[0]).toMatchObject({ state: "expired", entitled: false });
	});

	it("SUBSCRIPTION_RENEWED moves the expiry; SUBSCRIPTION_RECOVERED and RESTARTED bring it back", async () => {
		const { purchase } = await ownedSubscription({ expiresInSeconds: 3600 });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { expiresInSeconds: 40 * 24 * 3600 });
		await deliverAbout(purchase.purchaseToken);
		expect((await history(purchase.purchaseToken))?.expiresAt).toBeGreaterThan(Date.now() + 39 * 24 * 3600 * 1000);
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "on_hold" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "active" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "active" });
		await deliverAbout(purchase.purchaseToken);
		expect((await history(purchase.purchaseToken))?.state).toBe("active");
		const types = (await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer()))).timeline.map((t: { type: string }) => t.type);
		expect(types).toEqual(expect.arrayContaining(["subscription.SUBSCRIPTION_RENEWED", "subscription.SUBSCRIPTION_ON_HOLD", "subscription.SUBSCRIPTION_RECOVERED", "subscription.SUBSCRIPTION_RESTARTED"]));
	});

	it("a refund (voidedPurchaseNotification) marks a one-time purchase refunded", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		const owner = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: owner }));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true });
		await deliverAbout(purchase.purchaseToken);
		expect(await history(purchase.purchaseToken)).toMatchObject({ state: "refunded", userId: owner });
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: owner }))).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("a refund of a subscription marks it refunded, and later notifications do not undo that", async () => {
		const { purchase } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true });
		await deliverAbout(purchase.purchaseToken);
		expect((await history(purchase.purchaseToken))?.state).toBe("refunded");
		await emulator.googleNotify({ kind: "subscription", purchaseToken: purchase.purchaseToken, notificationType: 13 });
		await deliverAbout(purchase.purchaseToken);
		expect((await history(purchase.purchaseToken))?.state).toBe("refunded");
	});

	it("ONE_TIME_PRODUCT_PURCHASED for a purchase nobody claimed yet is recorded without an owner", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", notify: true });
		await deliverAbout(purchase.purchaseToken);
		expect(await history(purchase.purchaseToken)).toMatchObject({ userId: null, state: "active" });
		// Not acknowledged yet: nobody owns it, so nothing is acknowledged until someone claims it.
		expect((await emulator.googlePurchase(purchase.purchaseToken)).acknowledged).toBe(false);
	});

	it("a purchase that needs acknowledging and has an owner is acknowledged as a grant is", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await emulator.fault({ match: `${purchase.purchaseToken}:acknowledge`, mode: "error", status: 503, times: 5 });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser() }));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { expiresInSeconds: 60 * 24 * 3600 });
		await deliverAbout(purchase.purchaseToken);
		expect((await claimedTransaction("google_play", purchase.purchaseToken))?.ackState).toMatch(/^(pending|done)$/);
	});

	it("a test notification is answered 200 and changes nothing", async () => {
		const sent = await emulator.googleNotify({ kind: "test", packageName: SAMPLE_APP.packageName });
		const [delivered] = await deliverNotifications({ only: (d) => d.notificationId === sent.messageId });
		expect(delivered).toMatchObject({ status: 200, body: { received: true, status: "recorded" } });
	});
});

describe("a Google subscription renewed under a new token (upgrade, resubscribe)", () => {
	it("belongs to the owner of the token it links to; the old token is superseded", async () => {
		const { purchase: first, owner } = await ownedSubscription();
		const upgrade = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true, linkedPurchaseToken: first.purchaseToken, notify: true });
		await deliverAbout(upgrade.purchaseToken);
		expect(await history(upgrade.purchaseToken)).toMatchObject({ userId: owner, subscriptionId: first.purchaseToken, linkedTransactionId: first.purchaseToken });
		expect((await history(first.purchaseToken))?.state).toBe("superseded");
		expect(await verify(googleVerifyBody(upgrade, { userIdentifier: uniqueUser("thief") }))).toMatchObject({ code: "owned_by_another_user" });
		expect(await verify(googleVerifyBody(upgrade, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	});

	it("is refused to another user even when no notification came, through a chain of two links", async () => {
		const { purchase: first, owner } = await ownedSubscription();
		const second = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true, linkedPurchaseToken: first.purchaseToken });
		const third = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true, linkedPurchaseToken: second.purchaseToken });
		expect(await verify(googleVerifyBody(third, { userIdentifier: uniqueUser("other") }))).toMatchObject({ code: "owned_by_another_user" });
		expect(await verify(googleVerifyBody(second, { userIdentifier: uniqueUser("other") }))).toMatchObject({ code: "owned_by_another_user" });
		expect(await verify(googleVerifyBody(third, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	});

	it("claimed 100 times at once by two users through two tokens of it, ends with one owner", async () => {
		const first = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true });
		const second = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", acknowledged: true, linkedPurchaseToken: first.purchaseToken });
		const users = [uniqueUser("a"), uniqueUser("b")];
		const answers = await Promise.all(
			Array.from({ length: 100 }, async (_, i) => {
				const user = users[i % 2]!;
				return { user, granted: (await verify(googleVerifyBody(i % 4 < 2 ? first : second, { userIdentifier: user }))).complete_purchase };
			}),
		);
		const winners = new Set(answers.filter((a) => a.granted).map((a) => a.user));
		expect(winners.size).toBe(1);
		const { results } = await env.DB.prepare("SELECT DISTINCT user_id FROM purchases WHERE store = 'google_play' AND subscription_id = ?1").bind(first.purchaseToken).all();
		expect(results).toEqual([{ user_id: [...winners][0] }]);
	});
});

describe("the same Pub/Sub message delivered again", () => {
	it("is applied once, however often it arrives, and at the same moment too", async () => {
		const { purchase } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });
		const [pending] = (await emulator.outbox()).filter(about(purchase.purchaseToken));
		const before = await emulator.calls(purchase.purchaseToken, "google.subscriptionsv2.get");
		const post = () => call("POST", "/v1/notifications/google", pending!.body, pending!.headers);
		const answers = await Promise.all(Array.from({ length: 5 }, post));
		expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
		const statuses = await Promise.all(answers.map(async (a) => (await json(a)).status));
		expect(statuses.filter((s) => s === "applied").length).toBe(1);
		expect((await json(await post())).status).toBe("duplicate");
		// Every delivery asks Google (a duplicate is recognised at the claim, after asking); the change is applied once.
		expect(await emulator.calls(purchase.purchaseToken, "google.subscriptionsv2.get")).toBe(before + 6);
	});
});

describe("a Pub/Sub push whose OIDC token is not the one configured", () => {
	const push = JSON.parse(env.TEST_GOOGLE_PUSH) as { privateKey: string; kid: string; audience: string; serviceAccountEmail: string };

	async function token(claims: JWTPayload & { email?: string; email_verified?: boolean }, options: { key?: CryptoKey; kid?: string; alg?: string } = {}) {
		const now = Math.floor(Date.now() / 1000);
		const key = options.key ?? (await importPKCS8(push.privateKey, "RS256"));
		return new SignJWT({ email: push.serviceAccountEmail, email_verified: true, ...claims })
			.setProtectedHeader({ alg: "RS256", kid: options.kid ?? push.kid, typ: "JWT" })
			.setIssuer((claims.iss as string | undefined) ?? "https://accounts.google.com")
			.setAudience((claims.aud as string | undefined) ?? push.audience)
			.setIssuedAt((claims.iat as number | undefined) ?? now)
			.setExpirationTime((claims.exp as number | undefined) ?? now + 3600)
			.sign(key);
	}

	async function attempt(authorization: string | undefined) {
		const { purchase } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });
		const [pending] = (await emulator.outbox()).filter(about(purchase.purchaseToken));
		const headers = { ...pending!.headers };
		delete headers.authorization;
		const response = await call("POST", "/v1/notifications/google", pending!.body, authorization === undefined ? headers : { ...headers, authorization });
		return { response, purchase };
	}

	const now = Math.floor(Date.now() / 1000);
	it.each([
		["another audience", () => token({ aud: "https://attacker.example/push" })],
		["another issuer", () => token({ iss: "https://accounts.attacker.example" })],
		["another service account", () => token({ email: "someone@attacker.iam.gserviceaccount.com" })],
		["an e-mail not verified", () => token({ email_verified: false })],
		["an expired token", () => token({ iat: now - 7200, exp: now - 3600 })],
		["a key Google does not publish", async () => token({}, { key: (await generateKeyPair("RS256")).privateKey, kid: "unknown-kid" })],
		["a key Google does not publish, under Google's kid", async () => token({}, { key: (await generateKeyPair("RS256")).privateKey })],
		["alg none", async () => `${btoa(JSON.stringify({ alg: "none", typ: "JWT" }))}.${btoa(JSON.stringify({ iss: "https://accounts.google.com", aud: push.audience, email: push.serviceAccountEmail, email_verified: true, exp: now + 3600 }))}.`],
	])("is refused 401 (%s) and nothing is written", async (_, make) => {
		const { response, purchase } = await attempt(`Bearer ${await make()}`);
		expect(response.status).toBe(401);
		expect((await json(response)).error.code).toBe("unauthorized");
		expect((await history(purchase.purchaseToken))?.state).toBe("active");
	});

	it("is refused 401 without a token", async () => {
		const { response } = await attempt(undefined);
		expect(response.status).toBe(401);
	});

	it("is accepted with Google's key, the configured audience and account: the control", async () => {
		const { response, purchase } = await attempt(`Bearer ${await token({})}`);
		expect(response.status).toBe(200);
		expect((await history(purchase.purchaseToken))?.state).toBe("canceled");
	});
});

describe("a Google notification that cannot be recorded", () => {
	it("is answered 5xx when the Play API cannot be reached, so Pub/Sub redelivers, and the redelivery is applied", async () => {
		const { purchase } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });
		await emulator.fault({ match: purchase.purchaseToken, mode: "error", status: 503 });
		const [failed] = await deliverNotifications({ only: about(purchase.purchaseToken) });
		expect(failed?.status).toBe(503);
		const [retried] = await deliverNotifications({ only: about(purchase.purchaseToken) });
		expect(retried?.status).toBe(200);
		expect((await history(purchase.purchaseToken))?.state).toBe("canceled");
	});

	it("is answered 5xx when D1 fails, and applied on redelivery", async () => {
		const { purchase } = await ownedSubscription();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "on_hold" });
		const trigger = `fail_${crypto.randomUUID().replaceAll("-", "")}`;
		await env.DB.exec(`CREATE TRIGGER ${trigger} BEFORE UPDATE ON purchases WHEN NEW.transaction_id = '${purchase.purchaseToken}' BEGIN SELECT RAISE(ABORT, 'simulated D1 outage'); END;`);
		const [failed] = await deliverNotifications({ only: about(purchase.purchaseToken) });
		expect(failed?.status).toBe(503);
		await env.DB.exec(`DROP TRIGGER ${trigger}`);
		const [retried] = await deliverNotifications({ only: about(purchase.purchaseToken) });
		expect(retried?.status).toBe(200);
		expect((await history(purchase.purchaseToken))?.state).toBe("on_hold");
	});

	it("for a package no app here has, is refused 400", async () => {
		const sent = await emulator.googleNotify({ kind: "test", packageName: "com.example.nobody" });
		const [delivered] = await deliverNotifications({ only: (d) => d.notificationId === sent.messageId });
		expect(delivered?.status).toBe(400);
	});

	it("for a deployment without push configuration, is refused 401 and nothing is written", async () => {
		const sent = await emulator.googleNotify({ kind: "test", packageName: SAMPLE_APP.packageName, notify: false });
		const config = JSON.parse(env.APPS_CONFIG) as { notifications?: unknown };
		delete config.notifications;
		const ctx = createExecutionContext();
		const response = await worker.fetch(
			new Request("https://iap-edge.test/v1/notifications/google", { method: "POST", body: sent.body, headers: { "content-type": "application/json", authorization: "Bearer x" } }),
			{ ...env, APPS_CONFIG: JSON.stringify(config) },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(response.status).toBe(401);
		expect((await json(response)).error.message).toContain("not configured");
		const row = await env.DB.prepare("SELECT 1 FROM notifications WHERE notification_id = ?1").bind(sent.messageId).first();
		expect(row).toBeNull();
	});
});
