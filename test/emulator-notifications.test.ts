import { env } from "cloudflare:workers";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { describe, expect, it } from "vitest";
import { verifyAppleSignedData } from "../src/apple/signed-data";
import { APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleEmulator, testConfig } from "./support/apple-service.ts";
import { PUSH_SERVICE_ACCOUNT, SAMPLE_APP } from "./support/fixtures.ts";
import { about, deliver, deliverNotifications, developerNotification } from "./support/notifications.ts";
import { emulator, json } from "./support/service.ts";

/**
 * The store emulator's notifications, spoken to directly: what it signs must verify the way the stores' do, and its
 * outbox must redeliver as the stores do. Then one smoke check that the service accepts what it delivers.
 */

const base = () => env.TEST_EMULATOR_URL;
const outboxFor = async (id: string) => (await emulator.outbox()).filter(about(id));

async function verifyApple(jws: string) {
	return (await verifyAppleSignedData(jws, { roots: testConfig().appleTrustStore, allowLocalTesting: false })).payload as Record<string, any>;
}

describe("Pub/Sub pushes", () => {
	it("carry an OIDC token that verifies with the JWK set the emulator publishes, for the configured audience and account", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const { messageId } = await emulator.googleNotify({ kind: "subscription", purchaseToken: purchase.purchaseToken, notificationType: 2 });
		const [delivery] = (await outboxFor(purchase.purchaseToken)).filter((d) => d.notificationId === messageId);

		const certs = await fetch(`${base()}/google/oauth2/v3/certs`);
		expect(certs.headers.get("cache-control")).toBe("public, max-age=3600");
		const jwks = await json<JSONWebKeySet>(certs);
		expect(jwks.keys).toEqual([{ kty: "RSA", n: expect.any(String), e: "AQAB", alg: "RS256", use: "sig", kid: expect.any(String) }]);

		const token = delivery!.headers.authorization!.replace(/^Bearer /, "");
		expect(decodeProtectedHeader(token)).toEqual({ alg: "RS256", kid: jwks.keys[0]!.kid, typ: "JWT" });
		const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
			issuer: "https://accounts.google.com",
			audience: testConfig().notifications.googlePush!.audience,
			algorithms: ["RS256"],
		});
		expect(payload).toMatchObject({ email: PUSH_SERVICE_ACCOUNT, email_verified: true, azp: payload.sub });
		expect(payload.exp! - payload.iat!).toBe(3600);
		expect(delivery!.headers["content-type"]).toBe("application/json");
	});

	it("wrap the DeveloperNotification as Pub/Sub pushes it", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const { messageId, body } = await emulator.googleNotify({ kind: "one_time", purchaseToken: purchase.purchaseToken, notificationType: 1 });
		const push = JSON.parse(body);
		expect(push).toEqual({
			message: { attributes: {}, data: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/), messageId, message_id: messageId, publishTime: expect.any(String), publish_time: push.message.publishTime },
			subscription: "projects/iap-edge-emulator/subscriptions/rtdn",
		});
		expect(messageId).toMatch(/^\d+$/);
		expect(new Date(push.message.publishTime).toISOString()).toBe(push.message.publishTime);
		expect(developerNotification(body)).toEqual({
			version: "1.0",
			packageName: SAMPLE_APP.packageName,
			eventTimeMillis: expect.stringMatching(/^\d+$/),
			oneTimeProductNotification: { version: "1.0", notificationType: 1, purchaseToken: purchase.purchaseToken, sku: "premium_lifetime" },
		});
	});

	it("describe voided purchases and tests as Google does", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const voided = await emulator.googleNotify({ kind: "voided", purchaseToken: purchase.purchaseToken });
		expect(voided.notification.voidedPurchaseNotification).toEqual({ purchaseToken: purchase.purchaseToken, orderId: purchase.orderId, productType: 1, refundType: 1 });
		const test = await emulator.googleNotify({ kind: "test", packageName: SAMPLE_APP.packageName });
		expect(test.notification).toMatchObject({ packageName: SAMPLE_APP.packageName, testNotification: { version: "1.0" } });
	});
});

describe("App Store Server Notifications V2", () => {
	it("are signed like Apple's and verify with the service's own verifier, carrying the transaction as it stands", async () => {
		const tx = await appleEmulator.createSubscription();
		const { notifications } = await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL" });
		expect(notifications).toEqual([{ notificationUUID: expect.any(String), notificationType: "REFUND", sent: true }]);
		const [delivery] = await outboxFor(tx.transactionId);
		expect(delivery).toMatchObject({ store: "app_store", type: "REFUND", notificationId: notifications[0]!.notificationUUID, url: "https://iap-edge.test/v1/notifications/apple" });
		const { signedPayload } = JSON.parse(delivery!.body) as { signedPayload: string };
		expect(decodeProtectedHeader(signedPayload)).toEqual({ alg: "ES256", x5c: expect.arrayContaining([expect.any(String)]) });

		const payload = await verifyApple(signedPayload);
		expect(payload).toEqual({
			notificationType: "REFUND",
			notificationUUID: notifications[0]!.notificationUUID,
			version: "2.0",
			signedDate: expect.any(Number),
			data: {
				appAppleId: APPLE_SAMPLE.appAppleId,
				bundleId: APPLE_SAMPLE.bundleId,
				bundleVersion: "1",
				environment: "Production",
				signedTransactionInfo: expect.any(String),
				signedRenewalInfo: expect.any(String),
				status: 5,
			},
		});
		expect(payload.notificationUUID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		expect(await verifyApple(payload.data.signedTransactionInfo)).toMatchObject({ transactionId: tx.transactionId, revocationType: "REFUND_FULL", revocationDate: expect.any(Number) });
		expect(await verifyApple(payload.data.signedRenewalInfo)).toMatchObject({ originalTransactionId: tx.originalTransactionId, environment: "Production" });
	});

	it("leave out the renewal info and status for one-time purchases, and appAppleId outside Production", async () => {
		const tx = await appleEmulator.createTransaction({ environment: "Sandbox", notify: true });
		const [sent] = tx.notifications;
		const { payload } = await appleEmulator.notify(tx.transactionId, "CONSUMPTION_REQUEST");
		expect(sent).toMatchObject({ notificationType: "ONE_TIME_CHARGE", sent: true });
		expect(payload.data).toEqual({
			bundleId: APPLE_SAMPLE.bundleId,
			bundleVersion: "1",
			environment: "Sandbox",
			signedTransactionInfo: expect.any(String),
			consumptionRequestReason: "UNINTENDED_PURCHASE",
		});
	});

	it("include a TEST notification with only the app's data", async () => {
		const tx = await appleEmulator.createTransaction();
		const { payload, signedPayload } = await appleEmulator.notify(tx.transactionId, "TEST");
		expect((await verifyApple(signedPayload)).data).toEqual({ appAppleId: APPLE_SAMPLE.appAppleId, bundleId: APPLE_SAMPLE.bundleId, bundleVersion: "1", environment: "Production" });
		expect(payload).not.toHaveProperty("subtype");
	});

	it("are refused for a type Apple does not have, naming the field", async () => {
		const tx = await appleEmulator.createTransaction();
		const response = await fetch(`${base()}/_emulator/apple/notifications`, { method: "POST", body: JSON.stringify({ transactionId: tx.transactionId, notificationType: "REFUNDED" }) });
		expect(response.status).toBe(400);
		expect(await json(response)).toMatchObject({ field: "notificationType" });
	});
});

describe("the outbox", () => {
	it("keeps a notification whose delivery failed, with the same id and body, until a 2xx delivers it", async () => {
		const tx = await appleEmulator.createSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false });
		const [first] = await outboxFor(tx.transactionId);
		expect(first).toMatchObject({ type: "DID_CHANGE_RENEWAL_STATUS", subtype: "AUTO_RENEW_DISABLED", attempts: 0, method: "POST" });

		await emulator.reportDelivery(first!.deliveryId, 503);
		const [again] = await outboxFor(tx.transactionId);
		expect(again).toEqual({ ...first, attempts: 1 });

		const delivered = await emulator.reportDelivery(first!.deliveryId, 200);
		expect(delivered).toMatchObject({ id: first!.notificationId, delivered: true, deliveries: [{ at: expect.any(Number), status: 503 }, { at: expect.any(Number), status: 200 }] });
		expect(await outboxFor(tx.transactionId)).toEqual([]);
		const late = await fetch(`${base()}/_emulator/outbox/${first!.deliveryId}`, { method: "POST", body: JSON.stringify({ status: 200 }) });
		expect(late.status).toBe(409);
	});

	it("gives each delivery of a Pub/Sub message a fresh token and the same message", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });
		const [first] = await outboxFor(purchase.purchaseToken);
		await emulator.reportDelivery(first!.deliveryId, 500);
		// The token's iat is in seconds: a later second makes another token.
		await new Promise((resolve) => setTimeout(resolve, 1_100));
		const [again] = await outboxFor(purchase.purchaseToken);
		expect(again).toMatchObject({ deliveryId: first!.deliveryId, notificationId: first!.notificationId, body: first!.body, attempts: 1 });
		expect(again!.headers.authorization).not.toBe(first!.headers.authorization);
	});

	it("records a change made with notify false without sending it", async () => {
		const tx = await appleEmulator.createSubscription();
		const { notifications } = await appleEmulator.updateTransaction(tx.transactionId, { expiresInSeconds: -1, autoRenew: false, notify: false });
		expect(notifications.map((n) => n.notificationType)).toEqual(["DID_CHANGE_RENEWAL_STATUS", "EXPIRED"]);
		expect(await outboxFor(tx.transactionId)).toEqual([]);
		expect(await emulator.notifications({ store: "app_store", transaction: tx.transactionId })).toEqual([
			expect.objectContaining({ type: "DID_CHANGE_RENEWAL_STATUS", subtype: "AUTO_RENEW_DISABLED", sent: false, delivered: false, deliveries: [] }),
			expect.objectContaining({ type: "EXPIRED", subtype: "VOLUNTARY", sent: false }),
		]);

		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", notify: false });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "on_hold", notify: false });
		expect(await outboxFor(purchase.purchaseToken)).toEqual([]);
		expect(await emulator.notifications({ transaction: purchase.purchaseToken })).toEqual([
			expect.objectContaining({ type: "SUBSCRIPTION_PURCHASED", sent: false }),
			expect.objectContaining({ type: "SUBSCRIPTION_ON_HOLD", sent: false }),
		]);
	});
});

describe("the service, receiving what the emulator delivers (smoke check)", () => {
	it("answers 200 to an App Store notification and to a Pub/Sub push", async () => {
		const tx = await appleEmulator.createSubscription();
		await appleEmulator.updateTransaction(tx.transactionId, { autoRenew: false });
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "canceled" });

		const delivered = await deliverNotifications({ only: (d) => d.transactionId === tx.transactionId || d.transactionId === purchase.purchaseToken });
		expect(delivered.map(({ store, type, status }) => ({ store, type, status }))).toEqual([
			{ store: "app_store", type: "DID_CHANGE_RENEWAL_STATUS", status: 200 },
			{ store: "google_play", type: "SUBSCRIPTION_CANCELED", status: 200 },
		]);
		expect(delivered.every((d) => d.body.received === true)).toBe(true);
		expect(await emulator.notifications({ transaction: purchase.purchaseToken })).toEqual([expect.objectContaining({ delivered: true })]);
	});

	it("answers a tampered push 401, which keeps it in the outbox", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "paused" });
		const [delivery] = await outboxFor(purchase.purchaseToken);
		const result = await deliver({ ...delivery!, headers: { ...delivery!.headers, authorization: `${delivery!.headers.authorization}x` } });
		expect(result.status).toBe(401);
		expect(await outboxFor(purchase.purchaseToken)).toHaveLength(1);
	});
});
