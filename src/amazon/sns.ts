/**
 * Amazon SNS deliveries to an HTTPS endpoint, the transport of Amazon's Real-time Notifications
 * (https://developer.amazon.com/docs/in-app-purchasing/real-time-notifications.html). Every message is verified as AWS
 * says (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html) before anything in it is read:
 *   - SigningCertURL must be https on Amazon SNS's own hosts (sns.<region>.amazonaws.com; notifications.amazonSns
 *     .certificateHosts) and name a .pem: a certificate anyone else serves proves nothing. Fetched over TLS from that
 *     host, which is what vouches for it, and kept for a day per URL.
 *   - Signature: SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA, over the string SNS signs: each field's name and
 *     value on lines of their own, in this order, for a Notification Message, MessageId, Subject (if present),
 *     Timestamp, TopicArn, Type; for a SubscriptionConfirmation (or UnsubscribeConfirmation) Message, MessageId,
 *     SubscribeURL, Timestamp, Token, TopicArn, Type.
 * A message that fails any of these is refused and nothing in it is acted on. A SubscriptionConfirmation is confirmed
 * by fetching its SubscribeURL, only when that URL passes the same host check.
 */
import { importX509 } from "jose";
import * as z from "zod";
import { InvalidNotification, StoreUnreachable } from "../answers";
import type { AmazonSnsConfig } from "../config/schema";
import { storeFetch } from "../fetch";

const MESSAGE_TYPES = ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"] as const;

export const SnsMessage = z.looseObject({
	Type: z.enum(MESSAGE_TYPES),
	MessageId: z.string().min(1).max(128),
	TopicArn: z.string().min(1).max(1024),
	/** A Notification's payload (Amazon's RTN, escaped JSON); SNS caps messages at 256 KB. */
	Message: z.string().max(256 * 1024),
	Timestamp: z.string().min(1).max(64),
	SignatureVersion: z.enum(["1", "2"], { error: 'SignatureVersion must be "1" or "2"' }),
	Signature: z.string().min(1).max(4096),
	SigningCertURL: z.string().min(1).max(2048),
	Subject: z.string().max(1024).optional(),
	SubscribeURL: z.string().max(4096).optional(),
	Token: z.string().max(4096).optional(),
	UnsubscribeURL: z.string().max(4096).optional(),
});
export type SnsMessage = z.infer<typeof SnsMessage>;

/** The JSON document SNS POSTs (with `Content-Type: text/plain`), checked against its `x-amz-sns-message-type` header. */
export function parseSnsMessage(text: string, headerType: string | undefined): SnsMessage {
	let json: unknown;
	try {
		json = JSON.parse(text);
	} catch {
		throw new InvalidNotification("invalid", "the body is not an SNS message (not JSON)");
	}
	const parsed = SnsMessage.safeParse(json);
	if (!parsed.success) throw new InvalidNotification("invalid", `the body is not an SNS message (${parsed.error.issues[0]?.path.join(".") || "root"})`);
	if (headerType !== undefined && headerType !== parsed.data.Type) throw new InvalidNotification("invalid", "x-amz-sns-message-type does not match the message's Type");
	return parsed.data;
}

/** The string SNS signs, as AWS defines it for each message type. */
export function stringToSign(m: SnsMessage): string {
	const fields: (keyof SnsMessage)[] =
		m.Type === "Notification"
			? ["Message", "MessageId", ...(m.Subject === undefined ? [] : (["Subject"] as const)), "Timestamp", "TopicArn", "Type"]
			: ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
	return fields.map((name) => `${name}\n${String(m[name] ?? "")}\n`).join("");
}

export interface SnsOptions {
	sns: AmazonSnsConfig;
	timeoutMs: number;
}

/** Refuses (InvalidNotification) a message SNS did not sign, or one from a topic this deployment does not accept. */
export async function verifySnsMessage(m: SnsMessage, options: SnsOptions): Promise<void> {
	if (options.sns.topicArns && !options.sns.topicArns.includes(m.TopicArn)) {
		throw new InvalidNotification("unauthenticated", "the message comes from an SNS topic this deployment does not accept (notifications.amazonSns.topicArns)");
	}
	if (m.Type !== "Notification" && (m.SubscribeURL === undefined || m.Token === undefined)) {
		throw new InvalidNotification("invalid", `a ${m.Type} must carry SubscribeURL and Token`);
	}
	const certUrl = checkSnsUrl(m.SigningCertURL, options.sns.certificateHosts, "SigningCertURL");
	if (!certUrl.pathname.endsWith(".pem")) throw new InvalidNotification("unauthenticated", "SigningCertURL does not name a .pem certificate");
	const hash = m.SignatureVersion === "1" ? "SHA-1" : "SHA-256";
	const key = await signingKey(certUrl.href, hash, options.timeoutMs);
	let signature: Uint8Array<ArrayBuffer>;
	try {
		signature = Uint8Array.from(atob(m.Signature), (c) => c.charCodeAt(0));
	} catch {
		throw new InvalidNotification("unauthenticated", "the SNS signature is not base64");
	}
	const valid = await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, signature, new TextEncoder().encode(stringToSign(m)));
	if (!valid) throw new InvalidNotification("unauthenticated", "the SNS signature does not verify");
}

/** Confirms a verified SubscriptionConfirmation by fetching its SubscribeURL, which must pass the same host check. */
export async function confirmSubscription(m: SnsMessage, options: SnsOptions): Promise<void> {
	const url = checkSnsUrl(m.SubscribeURL ?? "", options.sns.certificateHosts, "SubscribeURL");
	const response = await storeFetch("amazon", url.href, { headers: { accept: "text/xml, application/xml" } }, options.timeoutMs);
	await response.body?.cancel();
	// Not confirmed: an error status makes SNS deliver the confirmation again.
	if (!response.ok) throw new StoreUnreachable("amazon", `confirming the SNS subscription answered ${response.status}`);
}

/**
 * A URL a message names, if it is one SNS would use: https (plain http only for a local host the operator listed,
 * for the emulator), no credentials, a host matching one of `hosts`.
 */
export function checkSnsUrl(raw: string, hosts: readonly string[], field: string): URL {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new InvalidNotification("unauthenticated", `${field} is not a URL`);
	}
	const host = url.hostname;
	if (url.username || url.password || !hosts.some((pattern) => hostMatches(pattern, host))) {
		throw new InvalidNotification("unauthenticated", `${field} is not on an Amazon SNS host (notifications.amazonSns.certificateHosts)`);
	}
	const local = host === "localhost" || host === "127.0.0.1" || host === "[::1]" || /\.(localhost|test)$/.test(host);
	if (url.protocol !== "https:" && !(url.protocol === "http:" && local)) throw new InvalidNotification("unauthenticated", `${field} must be an https URL`);
	if (url.protocol === "https:" && url.port !== "" && !local) throw new InvalidNotification("unauthenticated", `${field} must use the default https port`);
	return url;
}

/** `*` stands for exactly one label of letters, digits and hyphens; anything else must be equal. */
function hostMatches(pattern: string, host: string): boolean {
	const want = pattern.split(".");
	const got = host.toLowerCase().split(".");
	return want.length === got.length && want.every((label, i) => (label === "*" ? /^[a-z0-9-]+$/.test(got[i]!) : label === got[i]));
}

/** Signing certificates are fetched once a day per URL at most; AWS rotates them by publishing new URLs. */
const CERT_TTL_MS = 24 * 60 * 60 * 1000;
/** Only certificates that verified are kept, so this bounds memory against junk URLs on SNS hosts that answered. */
const MAX_CERTS = 32;

const certs = new Map<string, { spki: Promise<ArrayBuffer>; fetchedAt: number; keys: Map<string, Promise<CryptoKey>> }>();

async function signingKey(url: string, hash: "SHA-1" | "SHA-256", timeoutMs: number): Promise<CryptoKey> {
	let entry = certs.get(url);
	if (!entry || Date.now() - entry.fetchedAt > CERT_TTL_MS) {
		if (certs.size >= MAX_CERTS) certs.delete(certs.keys().next().value!);
		const spki = fetchCertificate(url, timeoutMs);
		entry = { spki, fetchedAt: Date.now(), keys: new Map() };
		certs.set(url, entry);
		// A failed fetch is not remembered: the next message tries again.
		spki.catch(() => {
			if (certs.get(url)?.spki === spki) certs.delete(url);
		});
	}
	let key = entry.keys.get(hash);
	if (!key) {
		key = entry.spki.then((spki) => crypto.subtle.importKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash }, false, ["verify"]));
		entry.keys.set(hash, key);
	}
	return key;
}

/** The certificate's public key (SPKI), read with jose; an answer that is no RSA certificate proves nothing. */
async function fetchCertificate(url: string, timeoutMs: number): Promise<ArrayBuffer> {
	const response = await storeFetch("amazon", url, { headers: { accept: "application/x-pem-file, */*" } }, timeoutMs);
	if (!response.ok) {
		await response.body?.cancel();
		throw new StoreUnreachable("amazon", `the SNS signing certificate could not be fetched (${response.status})`);
	}
	// Served as a certificate type, not text: decoded as the ASCII PEM it is.
	const pem = new TextDecoder().decode(await response.arrayBuffer()).trim();
	try {
		const key = await importX509(pem, "RS256", { extractable: true });
		return (await crypto.subtle.exportKey("spki", key)) as ArrayBuffer;
	} catch {
		throw new InvalidNotification("unauthenticated", "SigningCertURL does not serve an RSA certificate");
	}
}
