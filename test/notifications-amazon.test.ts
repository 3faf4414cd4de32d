import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { InvalidNotification, StoreUnreachable } from "../src/answers";
import { checkSnsUrl, confirmSubscription, parseSnsMessage, stringToSign, verifySnsMessage } from "../src/amazon/sns";
import { findPurchase } from "../src/ledger/history";
import { AMAZON_PACKAGES, AMAZON_TOPIC_ARN, AMAZON_UNSERVED_PACKAGE } from "./support/amazon-fixtures.ts";
import { aboutReceipt, amazonEmulator, amazonOutbox, amazonVerifyBody, deliverAmazon } from "./support/amazon-service.ts";
import { deliver } from "./support/notifications.ts";
import { TEST_APPS } from "./support/fixtures.ts";
import { bearer, BASE, call, emulator, eventually, json, receivedWebhooks, uniqueUser, type OutboxDelivery } from "./support/service.ts";
import { exports } from "cloudflare:workers";

/** Amazon's Real-time Notifications, delivered by Amazon SNS, keep the history true after the sale. */

const history = (receiptId: string) => findPurchase(env.DB, "amazon", receiptId);
const SNS = { sns: { certificateHosts: ["sns.*.amazonaws.com"] }, timeoutMs: 1_500 };

async function owned(input: { type?: "entitlement" | "consumable" | "subscription"; productId?: string; expiresInSeconds?: number } = {}) {
	const receipt = await amazonEmulator.createReceipt({ productId: input.productId ?? (input.type === "subscription" ? "premium_monthly" : "premium_lifetime"), ...input });
	const owner = uniqueUser("owner");
	expect(await json(await call("POST", "/verify", amazonVerifyBody(receipt, { userIdentifier: owner })))).toEqual({ complete_purchase: true });
	return { receipt, owner };
}

/** Delivers what the emulator holds about a receipt (the SNS confirmation first, when one is due) and expects 200s. */
async function deliverAbout(receiptId: string) {
	const delivered = await deliverAmazon(aboutReceipt(receiptId));
	for (const d of delivered) expect(d.status, JSON.stringify(d.body)).toBe(200);
	return delivered.filter((d) => d.type !== "SubscriptionConfirmation");
}

/** POSTs an SNS message (a delivery's body, possibly altered) to the service as SNS would, without reporting it to the emulator. */
async function post(body: string, headers: Record<string, string> = { "content-type": "text/plain; charset=UTF-8" }) {
	const response = await exports.default.fetch(new Request(`${BASE}/v1/notifications/amazon`, { method: "POST", body, headers }));
	return { status: response.status, body: await json(response) };
}

/** One pending Amazon notification about a receipt, with the subscription already confirmed. */
async function pendingAbout(receiptId: string): Promise<OutboxDelivery> {
	await deliverAmazon((d) => d.type === "SubscriptionConfirmation");
	const [delivery] = (await amazonOutbox()).filter(aboutReceipt(receiptId));
	if (!delivery) throw new Error(`no notification due about ${receiptId}`);
	return delivery;
}

describe("the SNS subscription", () => {
	it("is confirmed first: the service fetches SubscribeURL, and only then do notifications arrive", async () => {
		const confirmation = await amazonEmulator.resubscribe();
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", notify: true });
		// SNS sends nothing but the confirmation until the endpoint confirms.
		expect((await amazonOutbox()).map((d) => d.type)).toEqual(["SubscriptionConfirmation"]);
		const confirms = await emulator.calls("", "amazon.sns.confirm");
		const [answer] = await deliverAmazon((d) => d.notificationId === confirmation);
		expect(answer).toMatchObject({ status: 200, body: { received: true, status: "confirmed" } });
		expect(await emulator.calls("", "amazon.sns.confirm")).toBe(confirms + 1);
		expect((await amazonOutbox()).filter(aboutReceipt(receipt.receiptId)).map((d) => d.type)).toEqual(["ENTITLEMENT_PURCHASED"]);
		await deliverAbout(receipt.receiptId);
		expect(await history(receipt.receiptId)).toMatchObject({ userId: null, state: "active" });
	});

	it("is not confirmed when the confirmation does not verify, and SubscribeURL is then never fetched", async () => {
		const confirmation = await amazonEmulator.resubscribe();
		const [delivery] = (await amazonOutbox()).filter((d) => d.notificationId === confirmation);
		const message = JSON.parse(delivery!.body);
		const confirms = await emulator.calls("", "amazon.sns.confirm");
		const tampered = await post(JSON.stringify({ ...message, TopicArn: "arn:aws:sns:us-east-1:999999999999:someone-elses" }));
		expect(tampered.status).toBe(401);
		expect(await emulator.calls("", "amazon.sns.confirm")).toBe(confirms);
		await deliverAmazon((d) => d.notificationId === confirmation);
	});

	it("confirms only through a SubscribeURL on an SNS host", async () => {
		const message = { Type: "SubscriptionConfirmation", SubscribeURL: "https://sns.us-east-1.amazonaws.com.evil.test/?Action=ConfirmSubscription&Token=t" } as Parameters<typeof confirmSubscription>[0];
		await expect(confirmSubscription(message, SNS)).rejects.toBeInstanceOf(InvalidNotification);
		await expect(confirmSubscription({ ...message, SubscribeURL: "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription" }, SNS)).rejects.toThrow("https");
	});
});

describe("an Amazon notification", () => {
	it.each([
		["autoRenew: false", { autoRenew: false }, "SUBSCRIPTION_AUTO_RENEWAL_OFF", "canceled", true],
		["cancel", { cancel: true }, "SUBSCRIPTION_CANCELLED", "expired", false],
		["expire", { expire: true }, "SUBSCRIPTION_EXPIRED", "expired", false],
		["gracePeriod", { gracePeriod: { seconds: 3 * 24 * 3600 } }, "SUBSCRIPTION_IN_GRACE_PERIOD", "in_grace_period", true],
	] as const)("about a subscription (%s → %s) is refetched from RVS and recorded as Amazon states it", async (_change, patch, type, state, entitled) => {
		const { receipt, owner } = await owned({ type: "subscription" });
		const rvsCalls = await emulator.calls(receipt.receiptId, "amazon.rvs");
		await amazonEmulator.updateReceipt(receipt.receiptId, patch);
		const [delivered] = await deliverAbout(receipt.receiptId);
		expect(delivered).toMatchObject({ type, body: { received: true, status: "applied" } });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs")).toBe(rvsCalls + 1);
		expect((await history(receipt.receiptId))?.state).toBe(state);
		const page = await json(await call("GET", `/v1/users/${owner}/purchases`, undefined, bearer()));
		expect(page.purchases[0]).toMatchObject({ transactionId: receipt.receiptId, entitled });
	});

	it("SUBSCRIPTION_RENEWED moves the expiry on the same receipt; its timeline lists each notification", async () => {
		const { receipt } = await owned({ type: "subscription", expiresInSeconds: 3600 });
		await amazonEmulator.updateReceipt(receipt.receiptId, { renew: true });
		await deliverAbout(receipt.receiptId);
		expect((await history(receipt.receiptId))?.expiresAt).toBeGreaterThan(Date.now() + 29 * 24 * 3600 * 1000);
		await amazonEmulator.updateReceipt(receipt.receiptId, { gracePeriod: { seconds: 3600 } });
		await amazonEmulator.updateReceipt(receipt.receiptId, { gracePeriod: false });
		await deliverAbout(receipt.receiptId);
		expect((await history(receipt.receiptId))?.state).toBe("active");
		const timeline = (await json(await call("GET", `/v1/purchases/amazon/${encodeURIComponent(receipt.receiptId)}`, undefined, bearer()))).timeline;
		expect(timeline.map((t: { type: string }) => t.type)).toEqual(["SUBSCRIPTION_RENEWED", "SUBSCRIPTION_IN_GRACE_PERIOD", "SUBSCRIPTION_OUT_OF_GRACE_PERIOD"]);
	});

	it("ENTITLEMENT_CANCELLED marks the purchase refunded; its owner is refused from then on", async () => {
		const { receipt, owner } = await owned();
		await amazonEmulator.updateReceipt(receipt.receiptId, { refund: true });
		await deliverAbout(receipt.receiptId);
		expect(await history(receipt.receiptId)).toMatchObject({ state: "refunded", userId: owner });
		expect(await json(await call("POST", "/verify", amazonVerifyBody(receipt, { userIdentifier: owner })))).toMatchObject({ complete_purchase: false, code: "refunded" });
	});

	it("records what RVS says now, not what the notification's type claims", async () => {
		const { receipt } = await owned({ type: "subscription" });
		// A cancellation notification about a subscription RVS still says is active changes nothing.
		await amazonEmulator.notify({ receiptId: receipt.receiptId, notificationType: "SUBSCRIPTION_CANCELLED" });
		const [delivered] = await deliverAbout(receipt.receiptId);
		expect(delivered?.body).toMatchObject({ received: true, status: "unchanged" });
		expect((await history(receipt.receiptId))?.state).toBe("active");
	});

	it("signed with SignatureVersion 2 (SHA256withRSA) is accepted too", async () => {
		const { receipt } = await owned({ type: "subscription" });
		await amazonEmulator.notify({ receiptId: receipt.receiptId, notificationType: "SUBSCRIPTION_RENEWED", signatureVersion: "2" });
		const delivery = await pendingAbout(receipt.receiptId);
		expect(JSON.parse(delivery.body).SignatureVersion).toBe("2");
		expect(await deliver(delivery)).toMatchObject({ status: 200, body: { received: true } });
	});

	it("delivered twice (an SNS retry, a replay) is applied once, and the second costs no RVS call", async () => {
		const { receipt } = await owned({ type: "subscription" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { autoRenew: false });
		const delivery = await pendingAbout(receipt.receiptId);
		expect(await post(delivery.body, delivery.headers)).toMatchObject({ status: 200, body: { status: "applied" } });
		const rvsCalls = await emulator.calls(receipt.receiptId, "amazon.rvs");
		expect(await post(delivery.body, delivery.headers)).toMatchObject({ status: 200, body: { status: "duplicate" } });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs")).toBe(rvsCalls);
		const { results } = await env.DB.prepare("SELECT COUNT(*) AS n FROM notifications WHERE store = 'amazon' AND notification_id = ?1").bind(delivery.notificationId).all();
		expect(results).toEqual([{ n: 1 }]);
		await emulator.reportDelivery(delivery.deliveryId, 200);
	});

	it("about a purchase nobody has claimed is recorded without an owner, and its buyer then claims it", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", notify: true });
		await deliverAbout(receipt.receiptId);
		expect(await history(receipt.receiptId)).toMatchObject({ userId: null, state: "active" });
		const buyer = uniqueUser();
		expect(await json(await call("POST", "/verify", amazonVerifyBody(receipt, { userIdentifier: buyer })))).toEqual({ complete_purchase: true });
		expect((await history(receipt.receiptId))?.userId).toBe(buyer);
	});

	it("answers 503 while RVS is down, records nothing, and applies the redelivery once RVS answers", async () => {
		const { receipt } = await owned({ type: "subscription" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { expire: true });
		const delivery = await pendingAbout(receipt.receiptId);
		await emulator.fault({ match: receipt.receiptId, mode: "error", status: 500 });
		expect(await deliver(delivery)).toMatchObject({ status: 503 });
		expect((await history(receipt.receiptId))?.state).toBe("active");
		const [retried] = await deliverAbout(receipt.receiptId);
		expect(retried).toMatchObject({ notificationId: delivery.notificationId, status: 200, body: { status: "applied" } });
		expect((await history(receipt.receiptId))?.state).toBe("expired");
	});

	it("saying a receipt RVS no longer knows (410) revokes what the history holds", async () => {
		const { receipt, owner } = await owned();
		await amazonEmulator.updateReceipt(receipt.receiptId, { gone: true });
		await amazonEmulator.notify({ receiptId: receipt.receiptId, notificationType: "ENTITLEMENT_CANCELLED" });
		await deliverAbout(receipt.receiptId);
		expect(await history(receipt.receiptId)).toMatchObject({ state: "revoked", userId: owner });
	});

	it("about a Cloud Sandbox purchase is applied for an app that accepts Sandbox", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_PACKAGES.sandbox, sandbox: true, notify: true });
		await deliverAbout(receipt.receiptId);
		expect(await history(receipt.receiptId)).toMatchObject({ environment: "Sandbox", userId: null });
	});

	it("about a test purchase is ignored, and not recorded, for an app that does not accept Sandbox", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", test: true, notify: true });
		const [delivered] = await deliverAbout(receipt.receiptId);
		expect(delivered?.body).toMatchObject({ received: true, status: "ignored" });
		expect(await history(receipt.receiptId)).toBeNull();
	});
});

describe("Amazon's changes as events", () => {
	it("reach webhooks like any store's: granted, renewal off, renewed again, expired, entitlement lost", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", packageName: AMAZON_PACKAGES.events });
		const owner = uniqueUser();
		expect(await json(await call("POST", "/verify", amazonVerifyBody(receipt, { userIdentifier: owner, appId: TEST_APPS.events.id })))).toEqual({ complete_purchase: true });
		for (const change of [{ autoRenew: false }, { autoRenew: true }, { renew: true }, { expire: true }] as const) {
			await amazonEmulator.updateReceipt(receipt.receiptId, change);
			await deliverAbout(receipt.receiptId);
		}
		const expected = ["purchase.granted", "entitlement.granted", "subscription.canceled", "subscription.uncanceled", "subscription.renewed", "subscription.expired", "entitlement.lost"];
		// Every event to the endpoint taking them all (signed with one secret), in the order they happened.
		const events = await eventually(async () => {
			const all = (await receivedWebhooks(receipt.receiptId)).filter((w) => w.headers["webhook-signature"]?.split(" ").length === 1).map((w) => JSON.parse(w.body));
			return all.length >= expected.length ? all.sort((a, b) => a.at - b.at || a.sequence - b.sequence) : undefined;
		});
		expect(events.map((e) => e.type)).toEqual(expected);
		expect(events[0]).toMatchObject({ store: "amazon", userId: owner, claim: receipt.receiptId, purchase: { transactionId: receipt.receiptId, store: "amazon" } });
	});
});

describe("an immediate plan change (a new receipt replacing the old)", () => {
	it("belongs to the owner of the receipt it replaced; the old receipt is superseded; nobody else can claim the new one", async () => {
		const { receipt: old, owner } = await owned({ type: "subscription" });
		const replacement = await amazonEmulator.createReceipt({ productId: "premium_monthly", type: "subscription", termSku: "premium_monthly_annual", replaces: old.receiptId });
		await deliverAbout(replacement.receiptId);
		expect(await history(replacement.receiptId)).toMatchObject({ userId: owner, subscriptionId: old.receiptId, linkedTransactionId: old.receiptId, state: "active" });
		expect((await history(old.receiptId))?.state).toBe("superseded");
		expect(await json(await call("POST", "/verify", amazonVerifyBody(replacement, { userIdentifier: uniqueUser("thief") })))).toMatchObject({ code: "owned_by_another_user" });
		expect(await json(await call("POST", "/verify", amazonVerifyBody(replacement, { userIdentifier: owner })))).toEqual({ complete_purchase: true });
	});
});

describe("an SNS message that does not verify is refused and nothing is written", () => {
	async function refused(receiptId: string, alter: (message: Record<string, string>) => Record<string, string>, status = 401) {
		const delivery = await pendingAbout(receiptId);
		const rvsCalls = await emulator.calls(receiptId, "amazon.rvs");
		const before = await history(receiptId);
		const answer = await post(JSON.stringify(alter(JSON.parse(delivery.body))));
		expect(answer.status, JSON.stringify(answer.body)).toBe(status);
		expect(answer.body.error.code).toBe(status === 401 ? "unauthorized" : "invalid_request");
		expect(await emulator.calls(receiptId, "amazon.rvs")).toBe(rvsCalls);
		expect(await history(receiptId)).toEqual(before);
		const { results } = await env.DB.prepare("SELECT 1 FROM notifications WHERE store = 'amazon' AND notification_id = ?1").bind(delivery.notificationId).all();
		expect(results).toEqual([]);
		return answer.body.error.message as string;
	}

	async function pending() {
		const { receipt } = await owned({ type: "subscription" });
		await amazonEmulator.updateReceipt(receipt.receiptId, { expire: true });
		return receipt.receiptId;
	}

	it("a Message changed after signing (a bad signature)", async () => {
		const receiptId = await pending();
		const message = await refused(receiptId, (m) => ({ ...m, Message: m.Message!.replace("SUBSCRIPTION_EXPIRED", "SUBSCRIPTION_RENEWED") }));
		expect(message).toContain("signature does not verify");
		expect((await history(receiptId))?.state).toBe("active");
	});

	it("a signature that is not base64, or claimed under the other SignatureVersion", async () => {
		const receiptId = await pending();
		await refused(receiptId, (m) => ({ ...m, Signature: "%%%" }));
		await refused(receiptId, (m) => ({ ...m, SignatureVersion: m.SignatureVersion === "1" ? "2" : "1" }));
	});

	it("a certificate URL on another host", async () => {
		const receiptId = await pending();
		for (const url of ["https://sns.us-east-1.amazonaws.com.evil.test/cert.pem", "https://evil.test/SimpleNotificationService-0.pem", "https://sns.us-east-1.example.com/x.pem", "https://user@sns.us-east-1.amazonaws.com/x.pem"]) {
			expect(await refused(receiptId, (m) => ({ ...m, SigningCertURL: url }))).toContain("SigningCertURL");
		}
	});

	it("a certificate URL over plain http, or not naming a .pem", async () => {
		const receiptId = await pending();
		expect(await refused(receiptId, (m) => ({ ...m, SigningCertURL: m.SigningCertURL!.replace("https:", "http:") }))).toContain("https");
		expect(await refused(receiptId, (m) => ({ ...m, SigningCertURL: `${m.SigningCertURL}.txt` }))).toContain(".pem");
	});

	it("a body that is no SNS message, or whose type header contradicts it, is a 400", async () => {
		const receiptId = await pending();
		await refused(receiptId, (m) => ({ ...m, Type: "Something" }), 400);
		const delivery = await pendingAbout(receiptId);
		expect((await post(delivery.body, { ...delivery.headers, "x-amz-sns-message-type": "SubscriptionConfirmation" })).status).toBe(400);
		expect((await post("not json")).status).toBe(400);
	});

	it("a signed notification for a package no app here serves is a 400, asking RVS nothing", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_UNSERVED_PACKAGE, notify: true });
		const [delivered] = await deliverAmazon(aboutReceipt(receipt.receiptId)).then((all) => all.filter((d) => d.type !== "SubscriptionConfirmation"));
		expect(delivered).toMatchObject({ status: 400, body: { error: { code: "invalid_request", message: expect.stringContaining(AMAZON_UNSERVED_PACKAGE) } } });
		expect(await emulator.calls(receipt.receiptId, "amazon.rvs")).toBe(0);
		expect(await history(receipt.receiptId)).toBeNull();
	});

	it("the same package's notification reaches the app that has it", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", packageName: AMAZON_PACKAGES.events, notify: true });
		await deliverAbout(receipt.receiptId);
		expect((await history(receipt.receiptId))?.appId).toBe("events-app");
	});
});

describe("SNS verification, piece by piece", () => {
	it("signs Notification and SubscriptionConfirmation over the fields AWS names, in AWS's order", () => {
		const base = { MessageId: "id", TopicArn: "arn", Message: "m", Timestamp: "t", SignatureVersion: "1", Signature: "s", SigningCertURL: "u" } as const;
		expect(stringToSign({ ...base, Type: "Notification" })).toBe("Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n");
		expect(stringToSign({ ...base, Type: "Notification", Subject: "s" })).toBe("Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n");
		expect(stringToSign({ ...base, Type: "SubscriptionConfirmation", SubscribeURL: "su", Token: "tok" })).toBe(
			"Message\nm\nMessageId\nid\nSubscribeURL\nsu\nTimestamp\nt\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n",
		);
	});

	it("accepts https on sns.<region>.amazonaws.com only (plain http only for a local host listed for the emulator)", () => {
		const hosts = ["sns.*.amazonaws.com", "127.0.0.1"];
		expect(checkSnsUrl("https://sns.eu-west-1.amazonaws.com/a.pem", hosts, "f").hostname).toBe("sns.eu-west-1.amazonaws.com");
		expect(checkSnsUrl("http://127.0.0.1:8788/amazon/sns/a.pem", hosts, "f").port).toBe("8788");
		for (const url of ["https://sns.amazonaws.com/a.pem", "https://sns.a.b.amazonaws.com/a.pem", "http://sns.eu-west-1.amazonaws.com/a.pem", "https://sns.eu-west-1.amazonaws.com:8443/a.pem", "https://127.0.0.2/a.pem", "not a url"]) {
			expect(() => checkSnsUrl(url, hosts, "f"), url).toThrow(InvalidNotification);
		}
	});

	it("refuses a message from a topic the deployment does not accept (notifications.amazonSns.topicArns)", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", notify: true });
		const delivery = await pendingAbout(receipt.receiptId);
		const message = parseSnsMessage(delivery.body, undefined);
		await expect(verifySnsMessage(message, { ...SNS, sns: { ...SNS.sns, topicArns: ["arn:aws:sns:us-east-1:111111111111:other"] } })).rejects.toThrow("topic");
		await expect(verifySnsMessage(message, { ...SNS, sns: { ...SNS.sns, topicArns: [AMAZON_TOPIC_ARN] } })).resolves.toBeUndefined();
		await deliverAbout(receipt.receiptId);
	});

	it("a signing certificate that cannot be fetched is an outage (503: SNS delivers again), not a refusal", async () => {
		const receipt = await amazonEmulator.createReceipt({ productId: "premium_lifetime", notify: true });
		const message = parseSnsMessage((await pendingAbout(receipt.receiptId)).body, undefined);
		// A certificate URL never fetched before, which the emulator's SNS does not serve.
		const missing = { ...message, SigningCertURL: message.SigningCertURL.replace(/-[0-9a-f]+\.pem$/, "-0000.pem") };
		await expect(verifySnsMessage(missing, SNS)).rejects.toBeInstanceOf(StoreUnreachable);
		await deliverAbout(receipt.receiptId);
	});
});
