import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load";
import { AMAZON_PACKAGES, AMAZON_TOPIC_ARN } from "./support/amazon-fixtures.ts";
import { amazonEmulator, amazonOutbox } from "./support/amazon-service.ts";
import { SAMPLE_APP } from "./support/fixtures.ts";
import { json } from "./support/service.ts";

/**
 * The emulator plays Amazon as the service meets it: RVS checks what the real one checks (the shared secret, the
 * receipt, its user, its environment) and answers in Amazon's shapes; SNS signs what it sends with the certificate it
 * serves. These tests ask the emulator directly, as the service would.
 */

const secret = () => loadConfig(env).ok && (loadConfig(env) as { config: { apps: { id: string; amazon?: { sharedSecret: string } }[] } }).config.apps.find((a) => a.id === SAMPLE_APP.id)!.amazon!.sharedSecret;

function rvs(path: { sandbox?: boolean; secret?: string; user: string; receipt: string; version?: string }) {
	const enc = encodeURIComponent;
	const url = `${env.TEST_EMULATOR_URL}/amazon${path.sandbox ? "/sandbox" : ""}/version/${path.version ?? "1.0"}/verifyReceiptId/developer/${enc(path.secret ?? (secret() as string))}/user/${enc(path.user)}/receiptId/${enc(path.receipt)}`;
	return fetch(url);
}

function admin(path: string, body: unknown): Promise<Response> {
	return fetch(`${env.TEST_EMULATOR_URL}/_emulator/amazon${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

describe("the emulator's RVS", () => {
	it("answers a receipt with the fields Amazon's RVS answers, for its user and the account's secret", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		const response = await rvs({ user: receipt.userId, receipt: receipt.receiptId });
		expect(response.status).toBe(200);
		expect(await json(response)).toMatchObject({
			receiptId: receipt.receiptId,
			productType: "SUBSCRIPTION",
			productId: "premium_monthly",
			termSku: receipt.termSku,
			renewalDate: receipt.renewalDate,
			cancelDate: null,
			cancelReason: null,
			autoRenewing: true,
			testTransaction: false,
			betaProduct: false,
			quantity: 1,
		});
	});

	it.each([
		["496 for a shared secret no developer account has", (r: { userId: string; receiptId: string }) => ({ secret: "not-the-secret", user: r.userId, receipt: r.receiptId }), 496, "Invalid developer sharedSecret"],
		["400 for an unknown receipt id", (r: { userId: string; receiptId: string }) => ({ user: r.userId, receipt: `${r.receiptId}x` }), 400, "Invalid receiptID"],
		["497 for a user the receipt is not for", (r: { userId: string; receiptId: string }) => ({ user: `${r.userId}x`, receipt: r.receiptId }), 497, "Invalid userId"],
		["400 in the Cloud Sandbox for a production receipt", (r: { userId: string; receiptId: string }) => ({ sandbox: true, user: r.userId, receipt: r.receiptId }), 400, "Invalid receiptID"],
		["404 for another operation version", (r: { userId: string; receiptId: string }) => ({ version: "2.0", user: r.userId, receipt: r.receiptId }), 404, "Unknown operation version 2.0"],
	])("answers %s, in Amazon's error shape", async (_what, path, status, message) => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const response = await rvs(path(receipt));
		expect(response.status).toBe(status);
		expect(await json(response)).toEqual({ message, status: false });
	});

	it("the Cloud Sandbox ignores the shared secret and knows App Tester's receipts, marked testTransaction", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", packageName: AMAZON_PACKAGES.sandbox, sandbox: true });
		const response = await rvs({ sandbox: true, secret: "anything", user: receipt.userId, receipt: receipt.receiptId });
		expect(await json(response)).toMatchObject({ testTransaction: true, termSku: "premium_monthly_monthly_term" });
	});

	it("answers 410 for a receipt no longer valid", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { gone: true });
		expect((await rvs({ user: receipt.userId, receipt: receipt.receiptId })).status).toBe(410);
	});

	it("records each call without the shared secret", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		await rvs({ user: receipt.userId, receipt: receipt.receiptId });
		const calls = (await json(await fetch(`${env.TEST_EMULATOR_URL}/_emulator/calls?match=${encodeURIComponent(receipt.receiptId)}`))).calls as { endpoint: string; subject: string; status: number }[];
		expect(calls).toEqual([expect.objectContaining({ endpoint: "amazon.rvs", status: 200, subject: `/amazon/verifyReceiptId/user/${receipt.userId}/receiptId/${receipt.receiptId}` })]);
		expect(JSON.stringify(calls)).not.toContain(secret() as string);
	});
});

describe("the emulator's Amazon changes", () => {
	it("turns renewal off as Amazon does: no renewal date, the cancel date where the renewal would have been", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		const changed = await amazonEmulator.updateReceipt(receipt.receiptId, { autoRenew: false, notify: false });
		expect(changed).toMatchObject({ renewalDate: null, cancelDate: receipt.renewalDate, cancelReason: 1, autoRenewing: false, notifications: [{ type: "SUBSCRIPTION_AUTO_RENEWAL_OFF", sent: false }] });
		expect(await amazonEmulator.updateReceipt(receipt.receiptId, { autoRenew: true, notify: false })).toMatchObject({ renewalDate: receipt.renewalDate, cancelDate: null, notifications: [{ type: "SUBSCRIPTION_AUTO_RENEWAL_ON" }] });
	});

	it.each([
		["/receipts", { productId: "p" }, "packageName"],
		["/receipts", { packageName: "com.example.unknown", productId: "p" }, "packageName"],
		["/receipts", { packageName: SAMPLE_APP.packageName, productId: "p", type: "bundle" }, "type"],
		["/receipts", { packageName: SAMPLE_APP.packageName, productId: "p", expiresInSeconds: 60 }, "expiresInSeconds"],
		["/receipts", { packageName: SAMPLE_APP.packageName, productId: "p", type: "subscription", replaces: "nope" }, "replaces"],
		["/notifications", { receiptId: "nope", notificationType: "SUBSCRIPTION_RENEWED" }, "receiptId"],
		["/notifications", { receiptId: "x", notificationType: "renewed" }, "notificationType"],
	])("refuses POST %s %j with 400 naming %s", async (path, body, field) => {
		const response = await admin(path, body);
		expect(response.status).toBe(400);
		expect((await json(response)).field).toBe(field);
	});

	it("refuses changes that make no sense for the receipt, naming the field", async () => {
		const entitlement = await amazonEmulator.createReceipt({ productId: "premium_lifetime" });
		const path = `/receipts/${encodeURIComponent(entitlement.receiptId)}`;
		expect(await json(await admin(path, { renew: true }))).toMatchObject({ field: "renew" });
		expect(await json(await admin(path, { cancel: true, refund: true }))).toMatchObject({ field: "refund" });
		await admin(path, { cancel: true, notify: false });
		expect(await json(await admin(path, { cancel: true }))).toMatchObject({ field: "cancel", error: expect.stringContaining("already cancelled") });
		const subscription = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription" });
		await amazonEmulator.updateReceipt(subscription.receiptId, { expire: true, notify: false });
		expect(await json(await admin(`/receipts/${encodeURIComponent(subscription.receiptId)}`, { renew: true }))).toMatchObject({ field: "renew", error: expect.stringContaining("new receipt") });
	});
});

describe("the emulator's SNS", () => {
	it("serves the certificate it signs with, and sends Amazon's RTN as the Message of a signed Notification", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", notify: true });
		const [delivery] = (await amazonOutbox()).filter((d) => d.type === "SubscriptionConfirmation" || d.transactionId === receipt.receiptId);
		const message = JSON.parse(delivery!.body) as Record<string, string>;
		expect(message).toMatchObject({ TopicArn: AMAZON_TOPIC_ARN, SignatureVersion: "1", SigningCertURL: expect.stringMatching(/^https:\/\/sns\.us-east-1\.amazonaws\.com\/.+\.pem$/) });
		expect(delivery!.headers).toMatchObject({ "content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": message.Type, "x-amz-sns-message-id": message.MessageId });
		const certificate = await fetch(message.SigningCertURL!);
		expect(await certificate.text()).toMatch(/^-----BEGIN CERTIFICATE-----/);
		expect((await fetch(message.SigningCertURL!.replace(/-[0-9a-f]+\.pem$/, "-0.pem"))).status).toBe(404);
	});

	it("confirms the subscription only with its own token", async () => {
		const id = await amazonEmulator.resubscribe();
		const confirmations = (await amazonOutbox()).filter((d) => d.type === "SubscriptionConfirmation");
		// The new one only: one still on its way before carries a void token.
		expect(confirmations.map((d) => d.notificationId)).toEqual([id]);
		const [confirmation] = confirmations;
		const url = new URL(JSON.parse(confirmation!.body).SubscribeURL);
		const forged = new URL(url);
		forged.searchParams.set("Token", "0".repeat(128));
		expect((await fetch(forged)).status).toBe(400);
		const confirmed = await fetch(url);
		expect(confirmed.status).toBe(200);
		expect(await confirmed.text()).toContain("<SubscriptionArn>");
	});
});
