import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPurchase } from "../src/ledger/history";
import { createApplePki, signJws } from "./support/pki.ts";
import { APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { about, deliverNotifications } from "./support/notifications.ts";
import { bearer, call, emulator, json, uniqueUser } from "./support/service.ts";

/** App Store Server Notifications V2 keep the history true after the sale, with no call to Apple. */

async function verify(body: unknown) {
	return (await json(await call("POST", "/verify", body))) as { complete_purchase: boolean; code?: string };
}

/** Delivers what the emulator sent about one transaction; each must be received. */
async function deliverAbout(transactionId: string) {
	const delivered = await deliverNotifications({ only: about(transactionId) });
	for (const d of delivered) expect(d.status, JSON.stringify(d.body)).toBe(200);
	return delivered;
}

async function history(transactionId: string) {
	return findPurchase(env.DB, "app_store", transactionId);
}

async function entitled(user: string, transactionId: string): Promise<boolean> {
	const page = await json(await call("GET", `/v1/users/${user}/purchases?limit=100`, undefined, bearer()));
	return page.purchases.find((p: { transactionId: string }) => p.transactionId === transactionId)?.entitled;
}

async function timeline(transactionId: string): Promise<{ type: string; subtype: string | null }[]> {
	return (await json(await call("GET", `/v1/purchases/app_store/${transactionId}`, undefined, bearer()))).timeline;
}

async function ownedSubscription(expiresInSeconds = 3600) {
	const tx = await appleEmulator.createSubscription({ expiresInSeconds });
	const owner = uniqueUser("owner");
	expect(await verify(appleVerifyBody(tx, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	return { tx, owner };
}

describe("App Store notifications, type by type", () => {
	it("REFUND marks the purchase refunded, with nobody verifying it again", async () => {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser();
		await verify(appleVerifyBody(tx, { userIdentifier: owner }));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL" });
		const [delivered] = await deliverAbout(tx.transactionId);
		expect(delivered?.body).toMatchObject({ received: true, status: "applied" });
		expect(await history(tx.transactionId)).toMatchObject({ state: "refunded", userId: owner });
		expect(await entitled(owner, tx.transactionId)).toBe(false);
		expect(await timeline(tx.transactionId)).toEqual([expect.objectContaining({ type: "REFUND" })]);
		// The refunded signed transaction, presented again by its owner, is refused: the claim knows better.
		expect(await verify(appleVerifyBody(tx, { userIdentifier: owner }))).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("REFUND_REVERSED gives it back; REFUND_DECLINED changes nothing", async () => {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser();
		await verify(appleVerifyBody(tx, { userIdentifier: owner }));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL" });
		await deliverAbout(tx.transactionId);
		await appleEmulator.notify(tx.transactionId, "REFUND_DECLINED");
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("refunded");
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: false });
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("active");
		expect((await timeline(tx.transactionId)).map((t) => t.type)).toEqual(["REFUND", "REFUND_DECLINED", "REFUND_REVERSED"]);
	});

	it("REVOKE (family sharing withdrawn) marks it revoked", async () => {
		const tx = await appleEmulator.createTransaction();
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "FAMILY_REVOKE" });
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("revoked");
	});

	it("DID_RENEW records the renewal as a new row owned by the subscription's owner", async () => {
		const { tx, owner } = await ownedSubscription();
		const renewal = await appleEmulator.createSubscription({ renewalOf: tx.transactionId, expiresInSeconds: 7200, notify: true });
		await deliverAbout(renewal.transactionId);
		expect(await history(renewal.transactionId)).toMatchObject({ userId: owner, subscriptionId: tx.transactionId, state: "active", expiresAt: renewal.expiresDate });
		expect(await entitled(owner, renewal.transactionId)).toBe(true);
	});

	it("SUBSCRIBED for a purchase nobody has claimed is recorded without an owner, and the first claim takes it", async () => {
		const tx = await appleEmulator.createSubscription({ expiresInSeconds: 3600, notify: true });
		await deliverAbout(tx.transactionId);
		expect(await history(tx.transactionId)).toMatchObject({ userId: null, state: "active" });
		const buyer = uniqueUser();
		expect(await verify(appleVerifyBody(tx, { userIdentifier: buyer }))).toEqual({ complete_purchase: true });
		expect((await history(tx.transactionId))?.userId).toBe(buyer);
	});

	it("a refund notified before anyone claimed the purchase makes the later claim refused", async () => {
		const tx = await appleEmulator.createTransaction();
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		await deliverAbout(tx.transactionId);
		expect(await history(tx.transactionId)).toMatchObject({ userId: null, state: "refunded" });
		// The JWS the app still holds was signed before the refund; the claim holds the later word.
		expect(await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }))).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("DID_CHANGE_RENEWAL_STATUS turns renewal off (still entitled until expiry) and on again", async () => {
		const { tx, owner } = await ownedSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false });
		await deliverAbout(tx.transactionId);
		expect(await history(tx.transactionId)).toMatchObject({ state: "canceled", willRenew: false });
		expect(await entitled(owner, tx.transactionId)).toBe(true);
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: true });
		await deliverAbout(tx.transactionId);
		expect(await history(tx.transactionId)).toMatchObject({ state: "active", willRenew: true });
	});

	it("DID_FAIL_TO_RENEW with GRACE_PERIOD keeps access through the grace period, and time ends it", async () => {
		const { tx, owner } = await ownedSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { billingRetry: { gracePeriodSeconds: 3600 } });
		await deliverAbout(tx.transactionId);
		const graced = await history(tx.transactionId);
		expect(graced).toMatchObject({ state: "in_grace_period" });
		expect(graced?.graceExpiresAt).toBeGreaterThan(Date.now());
		expect(await entitled(owner, tx.transactionId)).toBe(true);
		// Once the grace period has passed, the history says so without anyone asking Apple.
		await env.DB.prepare("UPDATE purchases SET grace_expires_at = ?2 WHERE store = 'app_store' AND transaction_id = ?1").bind(tx.transactionId, Date.now() - 1).run();
		expect(await entitled(owner, tx.transactionId)).toBe(false);
	});

	it("DID_FAIL_TO_RENEW without a grace period means billing retry: no access", async () => {
		const { tx, owner } = await ownedSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { billingRetry: {} });
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("on_hold");
		expect(await entitled(owner, tx.transactionId)).toBe(false);
	});

	it("EXPIRED marks the subscription expired", async () => {
		const { tx, owner } = await ownedSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false, notify: false });
		await appleEmulator.updateTransaction(tx.transactionId, { expiresInSeconds: -1 });
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("expired");
		expect(await entitled(owner, tx.transactionId)).toBe(false);
	});

	it("RENEWAL_EXTENDED moves the expiry", async () => {
		const { tx } = await ownedSubscription(3600);
		await appleEmulator.updateTransaction(tx.transactionId, { expiresInSeconds: 10 * 24 * 3600 });
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.expiresAt).toBeGreaterThan(Date.now() + 9 * 24 * 3600 * 1000);
	});

	it.each([
		["DID_CHANGE_RENEWAL_PREF", "DOWNGRADE"],
		["OFFER_REDEEMED", "UPGRADE"],
		["PRICE_INCREASE", "PENDING"],
		["RENEWAL_EXTENSION", "SUMMARY"],
		["CONSUMPTION_REQUEST", undefined],
		["ONE_TIME_CHARGE", undefined],
	])("%s %s is received, kept in the timeline, and leaves the purchase as Apple signed it", async (type, subtype) => {
		const { tx } = await ownedSubscription();
		const sent = await appleEmulator.notify(tx.transactionId, type, subtype);
		await deliverAbout(tx.transactionId);
		expect((await history(tx.transactionId))?.state).toBe("active");
		const [entry] = (await timeline(tx.transactionId)).filter((t) => t.type === type);
		expect(entry).toMatchObject({ type, subtype: subtype ?? null });
		const row = await env.DB.prepare("SELECT notification_id FROM notifications WHERE store = 'app_store' AND notification_id = ?1").bind(sent.notificationUUID).first();
		expect(row).toBeTruthy();
	});

	it("TEST is received and recorded, naming no purchase", async () => {
		const response = await call("POST", "/v1/notifications/apple", { signedPayload: (await testNotification()).signedPayload });
		expect(response.status).toBe(200);
		expect(await json(response)).toMatchObject({ received: true, status: "recorded" });
	});
});

async function testNotification() {
	const response = await fetch(`${env.TEST_EMULATOR_URL}/_emulator/apple/notifications`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ notificationType: "TEST", bundleId: APPLE_SAMPLE.bundleId, environment: "Production", notify: false }),
	});
	expect(response.status).toBe(201);
	return (await response.json()) as { notificationUUID: string; signedPayload: string };
}

describe("the same App Store notification delivered again", () => {
	it("is applied once, however often it arrives, and at the same moment too", async () => {
		const tx = await appleEmulator.createTransaction();
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }));
		const sent = await appleEmulator.notify(tx.transactionId, "REFUND", undefined, { notify: false });
		const post = () => call("POST", "/v1/notifications/apple", { signedPayload: sent.signedPayload });
		const answers = await Promise.all(Array.from({ length: 10 }, post));
		const statuses = await Promise.all(answers.map(async (a) => [a.status, (await json(a)).status]));
		expect(statuses.every(([status]) => status === 200)).toBe(true);
		// One of them applied it (unchanged for a purchase already refunded is fine too); none applied it twice.
		expect(statuses.filter(([, s]) => s === "applied").length).toBeLessThanOrEqual(1);
		expect((await json(await post())).status).toBe("duplicate");
		const { results } = await env.DB.prepare("SELECT COUNT(*) AS n FROM notifications WHERE notification_id = ?1").bind(sent.notificationUUID).all<{ n: number }>();
		expect(results[0]?.n).toBe(1);
	});
});

describe("App Store notifications out of order", () => {
	it("never move a purchase back: an older one arriving late is received but changes nothing", async () => {
		const { tx } = await ownedSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false, notify: false });
		const older = await appleEmulator.notify(tx.transactionId, "DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", { notify: false });
		await new Promise((resolve) => setTimeout(resolve, 5));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL", notify: false });
		const newer = await appleEmulator.notify(tx.transactionId, "REFUND", undefined, { notify: false });
		expect((await call("POST", "/v1/notifications/apple", { signedPayload: newer.signedPayload })).status).toBe(200);
		const late = await call("POST", "/v1/notifications/apple", { signedPayload: older.signedPayload });
		expect(late.status).toBe(200);
		expect((await json(late)).status).toBe("unchanged");
		expect((await history(tx.transactionId))?.state).toBe("refunded");
	});
});

describe("a forged App Store notification", () => {
	async function forged(mutate: (payload: Record<string, any>) => Record<string, any>, signer?: Awaited<ReturnType<typeof createApplePki>>) {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser();
		await verify(appleVerifyBody(tx, { userIdentifier: owner }));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true, notify: false });
		const genuine = await appleEmulator.notify(tx.transactionId, "REFUND", undefined, { notify: false });
		const payload = mutate(structuredClone(genuine.payload));
		let signedPayload: string;
		if (signer) {
			signedPayload = await signJws(payload, signer.leaf.keyPair.privateKey, signer.x5c);
		} else {
			const [header, , signature] = genuine.signedPayload.split(".");
			signedPayload = `${header}.${btoa(JSON.stringify(payload)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.${signature}`;
		}
		return { tx, owner, signedPayload };
	}

	it.each([
		["a payload changed after signing", (p: Record<string, any>) => ({ ...p, notificationType: "DID_RENEW" }), false],
		["signed by another Apple-shaped PKI (another root)", (p: Record<string, any>) => p, true],
		["for another bundle, signed by another PKI", (p: Record<string, any>) => ({ ...p, data: { ...p.data, bundleId: "com.example.other" } }), true],
	])("is refused (%s) and nothing is written", async (_, mutate, otherPki) => {
		const { tx, owner, signedPayload } = await forged(mutate, otherPki ? await createApplePki() : undefined);
		const response = await call("POST", "/v1/notifications/apple", { signedPayload });
		expect(response.status).toBe(400);
		expect((await json(response)).error.code).toBe("invalid_request");
		expect(await history(tx.transactionId)).toMatchObject({ state: "active", userId: owner });
		expect(await timeline(tx.transactionId)).toEqual([]);
	});

	it("is refused when self-signed (a chain of one)", async () => {
		const pki = await createApplePki();
		const { signedPayload } = await forged((p) => p);
		const [, body] = signedPayload.split(".");
		const payload = JSON.parse(atob(body!.replace(/-/g, "+").replace(/_/g, "/")));
		const selfSigned = await signJws(payload, pki.leaf.keyPair.privateKey, pki.x5c.slice(0, 1));
		expect((await call("POST", "/v1/notifications/apple", { signedPayload: selfSigned })).status).toBe(400);
	});

	it("is refused when it names a bundle no app here has, even signed by the trusted root", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: "com.example.unknown" });
		const sent = await appleEmulator.notify(tx.transactionId, "REFUND", undefined, { notify: false });
		const response = await call("POST", "/v1/notifications/apple", { signedPayload: sent.signedPayload });
		expect(response.status).toBe(400);
		expect((await json(response)).error.message).toContain("com.example.unknown");
	});

	it("is refused when it is not a JWS, and when the body is too large", async () => {
		expect((await call("POST", "/v1/notifications/apple", { signedPayload: "not.a.jws" })).status).toBe(400);
		expect((await call("POST", "/v1/notifications/apple", { nothing: true })).status).toBe(400);
		expect((await call("POST", "/v1/notifications/apple", JSON.stringify({ signedPayload: "x".repeat(600 * 1024) }))).status).toBe(413);
	});
});

describe("an App Store notification D1 cannot record", () => {
	it("is answered 5xx, so Apple delivers it again, and the redelivery is applied", async () => {
		const tx = await appleEmulator.createTransaction();
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser() }));
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		const trigger = `fail_${crypto.randomUUID().replaceAll("-", "")}`;
		await env.DB.exec(`CREATE TRIGGER ${trigger} BEFORE UPDATE ON purchases WHEN NEW.transaction_id = '${tx.transactionId}' BEGIN SELECT RAISE(ABORT, 'simulated D1 outage'); END;`);
		const [failed] = await deliverNotifications({ only: about(tx.transactionId) });
		expect(failed?.status).toBe(503);
		expect((await history(tx.transactionId))?.state).toBe("active");
		await env.DB.exec(`DROP TRIGGER ${trigger}`);
		// The emulator kept it for redelivery, as Apple would.
		const [retried] = await deliverNotifications({ only: about(tx.transactionId) });
		expect(retried?.status).toBe(200);
		expect((await history(tx.transactionId))?.state).toBe("refunded");
		expect((await emulator.notifications({ transaction: tx.transactionId })).at(-1)?.delivered).toBe(true);
	});
});

describe("a Sandbox notification for an app that accepts only Production", () => {
	it("is answered 200 and ignored", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox" });
		const sent = await appleEmulator.notify(tx.transactionId, "REFUND", undefined, { notify: false });
		const response = await call("POST", "/v1/notifications/apple", { signedPayload: sent.signedPayload });
		expect(response.status).toBe(200);
		expect(await json(response)).toMatchObject({ status: "ignored" });
		expect(await history(tx.transactionId)).toBeNull();
	});
});
