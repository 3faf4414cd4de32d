import { Hono, type Context } from "hono";
import { configOf, type AmazonSnsConfig } from "./config";
import { addNotification, release, withdraw } from "./notifications";
import { storeEndpoint } from "./store-endpoint";

/**
 * Amazon SNS, as it delivers Amazon's Real-time Notifications to an HTTPS endpoint
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html): each message a JSON document
 * POSTed as text/plain, signed (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, over the string SNS signs; see
 * https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html) with the key whose certificate it
 * serves at SigningCertURL. Before anything else the endpoint gets a SubscriptionConfirmation, and nothing more until
 * it fetches the SubscribeURL; the notifications made meanwhile wait for that (real SNS drops them: the emulator keeps
 * them, so a dev session loses none). Mounted at /amazon/sns:
 *   GET /amazon/sns/SimpleNotificationService-{hash}.pem                        the signing certificate
 *   GET /amazon/sns/?Action=ConfirmSubscription&TopicArn=&Token=                confirms the subscription
 */

/** The endpoint's subscription: one, to EMULATOR_CONFIG.notify.amazonUrl. */
const subscription = { token: "", confirmed: false, confirmationId: "" };

export type SnsMessageType = "Notification" | "SubscriptionConfirmation";

export function snsConfig(c: Context): AmazonSnsConfig {
	const sns = configOf(c).amazon.sns;
	if (!sns) throw new Error("store emulator: EMULATOR_CONFIG.amazon.sns is not set");
	return sns;
}

/** Whether the service has confirmed the subscription; until it has, Amazon's notifications wait. */
export function subscriptionConfirmed(): boolean {
	return subscription.confirmed;
}

/** SNS's signing key, imported once for each hash (SignatureVersion 1: SHA-1, 2: SHA-256), and its certificate's name. */
let signing: { pem: string; keys: Record<"1" | "2", Promise<CryptoKey>>; hash: Promise<string> } | undefined;

function signer(sns: AmazonSnsConfig) {
	if (signing?.pem !== sns.privateKey) {
		const der = Uint8Array.from(atob(sns.privateKey.replace(/-----[^-]+-----|\s+/g, "")), (ch) => ch.charCodeAt(0));
		const key = (hash: string) => crypto.subtle.importKey("pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash }, false, ["sign"]);
		const hash = crypto.subtle.digest("SHA-256", new TextEncoder().encode(sns.certificate)).then((d) => [...new Uint8Array(d)].slice(0, 16).map((b) => b.toString(16).padStart(2, "0")).join(""));
		signing = { pem: sns.privateKey, keys: { "1": key("SHA-1"), "2": key("SHA-256") }, hash };
	}
	return signing;
}

/** Where the emulator's SNS serves its certificate, as the service fetches it. */
export async function signingCertUrl(sns: AmazonSnsConfig): Promise<string> {
	return `${sns.url}/SimpleNotificationService-${await signer(sns).hash}.pem`;
}

/** A signed SNS message: the fields given, signed over the string SNS signs for its type, SignatureVersion as asked (or configured). */
export async function signedMessage(sns: AmazonSnsConfig, fields: Record<string, string>, version = sns.signatureVersion): Promise<Record<string, string>> {
	const message: Record<string, string> = { ...fields, SignatureVersion: version, SigningCertURL: await signingCertUrl(sns) };
	const order = message.Type === "Notification" ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"] : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
	const text = order.filter((name) => message[name] !== undefined).map((name) => `${name}\n${message[name]}\n`).join("");
	const signature = new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", await signer(sns).keys[version], new TextEncoder().encode(text)));
	return { ...message, Signature: btoa(String.fromCharCode(...signature)) };
}

/** The headers SNS sends with a message. */
export function snsHeaders(message: Record<string, string>, subscriptionArn?: string): Record<string, string> {
	return {
		"content-type": "text/plain; charset=UTF-8",
		"user-agent": "Amazon Simple Notification Service Agent",
		"x-amz-sns-message-type": message.Type!,
		"x-amz-sns-message-id": message.MessageId!,
		"x-amz-sns-topic-arn": message.TopicArn!,
		...(subscriptionArn ? { "x-amz-sns-subscription-arn": subscriptionArn } : {}),
	};
}

export function subscriptionArn(sns: AmazonSnsConfig): string {
	return `${sns.topicArn}:00000000-0000-4000-8000-000000000001`;
}

/**
 * Sends the SubscriptionConfirmation, unless one is on its way or the subscription is confirmed. Called before the
 * first notification, so the endpoint hears from SNS in the order SNS speaks.
 */
export async function ensureSubscription(c: Context): Promise<void> {
	if (subscription.confirmed || subscription.confirmationId) return;
	const sns = snsConfig(c);
	subscription.token = [...crypto.getRandomValues(new Uint8Array(64))].map((b) => b.toString(16).padStart(2, "0")).join("");
	subscription.confirmationId = crypto.randomUUID();
	const query = new URLSearchParams({ Action: "ConfirmSubscription", TopicArn: sns.topicArn, Token: subscription.token });
	const message = await signedMessage(sns, {
		Type: "SubscriptionConfirmation",
		MessageId: subscription.confirmationId,
		Token: subscription.token,
		TopicArn: sns.topicArn,
		Message: `You have chosen to subscribe to the topic ${sns.topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
		SubscribeURL: `${sns.url}?${query}`,
		Timestamp: new Date().toISOString(),
	});
	addNotification(c, {
		id: subscription.confirmationId,
		store: "amazon",
		type: "SubscriptionConfirmation",
		subtype: null,
		transactionId: null,
		scope: {},
		body: JSON.stringify(message),
		headers: async () => snsHeaders(message),
		sent: true,
	});
}

/**
 * The endpoint is subscribed anew (in the Developer Console, an endpoint added or changed): a new
 * SubscriptionConfirmation, and notifications wait until the service confirms it.
 */
export async function resubscribe(c: Context): Promise<string> {
	// A confirmation still on its way carries the old token: it is not sent any more.
	withdraw((n) => n.store === "amazon" && n.type === "SubscriptionConfirmation");
	Object.assign(subscription, { token: "", confirmed: false, confirmationId: "" });
	await ensureSubscription(c);
	return subscription.confirmationId;
}

export const amazonSns = new Hono();

amazonSns.get("/:file{SimpleNotificationService-[0-9a-f]+\\.pem}", storeEndpoint("amazon.sns.certificate"), async (c) => {
	const sns = snsConfig(c);
	if (c.req.param("file") !== `SimpleNotificationService-${await signer(sns).hash}.pem`) return c.text("Not Found", 404);
	return c.body(sns.certificate, 200, { "content-type": "application/x-pem-file" });
});

amazonSns.get("/", storeEndpoint("amazon.sns.confirm"), (c) => {
	const sns = snsConfig(c);
	const { Action: action, TopicArn: topicArn, Token: token } = c.req.query();
	if (action !== "ConfirmSubscription" || topicArn !== sns.topicArn || !token || token !== subscription.token) {
		return c.body(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid token</Message></Error></ErrorResponse>`, 400, { "content-type": "text/xml" });
	}
	subscription.confirmed = true;
	// What waited for the confirmation goes now.
	release(c, "amazon");
	return c.body(
		`<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>${subscriptionArn(sns)}</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`,
		200,
		{ "content-type": "text/xml" },
	);
});
