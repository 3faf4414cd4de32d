import type { WebhookConfig } from "../config/schema";
import type { ServiceEvent } from "./model";

/**
 * Webhooks as the Standard Webhooks specification (https://www.standardwebhooks.com/) signs them, so receivers
 * verify with its libraries in a few lines: `webhook-id` (the event id, the same on every attempt),
 * `webhook-timestamp` (seconds), `webhook-signature` ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", once per
 * secret while one is being rotated).
 */

/** How long a receiver has to answer. */
const TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
	let key = keys.get(secret);
	if (!key) {
		const raw = Uint8Array.from(atob(secret.slice("whsec_".length)), (c) => c.charCodeAt(0));
		key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
		keys.set(secret, key);
	}
	return key;
}

export async function signatureHeader(secrets: readonly string[], id: string, timestamp: number, body: string): Promise<string> {
	const signed = encoder.encode(`${id}.${timestamp}.${body}`);
	const signatures = await Promise.all(
		secrets.map(async (secret) => `v1,${btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.sign("HMAC", await keyFor(secret), signed))))}`),
	);
	return signatures.join(" ");
}

export type DeliveryResult = { delivered: true; status: number } | { delivered: false; status: number | null; error: string };

/**
 * One attempt. Never follows a redirect (a receiver that moved says so with a 3xx, which counts as a failure) and
 * never waits longer than TIMEOUT_MS. Any 2xx is delivered.
 */
export async function deliver(endpoint: WebhookConfig, event: ServiceEvent, now = Date.now()): Promise<DeliveryResult> {
	const body = JSON.stringify(event);
	const timestamp = Math.floor(now / 1000);
	let response: Response;
	try {
		response = await fetch(endpoint.url, {
			method: "POST",
			redirect: "manual",
			signal: AbortSignal.timeout(TIMEOUT_MS),
			headers: {
				"content-type": "application/json",
				"user-agent": "iap-edge-webhooks/1",
				"webhook-id": event.id,
				"webhook-timestamp": String(timestamp),
				"webhook-signature": await signatureHeader(endpoint.secret, event.id, timestamp, body),
			},
			body,
		});
	} catch (err) {
		const timedOut = err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError");
		return { delivered: false, status: null, error: timedOut ? `no answer within ${TIMEOUT_MS} ms` : "could not connect" };
	}
	await response.body?.cancel();
	if (response.status >= 200 && response.status < 300) return { delivered: true, status: response.status };
	return { delivered: false, status: response.status, error: response.status >= 300 && response.status < 400 ? "answered a redirect, which is not followed" : `answered ${response.status}` };
}
