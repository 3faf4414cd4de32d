import { Hono } from "hono";
import { Webhook } from "standardwebhooks";
import { configOf } from "./config";
import { storeEndpoint } from "./store-endpoint";

/**
 * A webhook receiver, playing your backend: it takes the service's webhooks at POST /_emulator/webhooks, checks
 * each signature with the Standard Webhooks library (https://github.com/standard-webhooks/standard-webhooks) as a
 * receiver would, and lists what it got at GET /_emulator/webhooks. Told to fail (an error status, a slow answer)
 * for the next deliveries through POST /_emulator/faults with match "/_emulator/webhooks" (or a query the endpoint's
 * URL has), like any store endpoint.
 */

export interface ReceivedWebhook {
	at: number;
	/** The event's type, from the body. */
	type: string | null;
	headers: Record<string, string>;
	body: string;
	signatureValid: boolean;
	/** What the receiver answered. */
	status: number;
}

const received: ReceivedWebhook[] = [];
const MAX_KEPT = 5_000;

export const webhookReceiver = new Hono()
	// The query is part of what faults match, so a test can fail one endpoint (e.g. "?endpoint=purchases") only.
	.post("/", storeEndpoint("webhooks.receive", (c) => { const url = new URL(c.req.url); return `${url.pathname}${url.search}`; }), async (c) => {
		const body = await c.req.text();
		const headers = Object.fromEntries(c.req.raw.headers.entries());
		// Any one of the configured secrets verifying is enough, as with a receiver mid-rotation.
		const signatureValid = configOf(c).webhooks.secrets.some((secret) => {
			try {
				new Webhook(secret).verify(body, headers);
				return true;
			} catch {
				return false;
			}
		});
		let type: string | null = null;
		try {
			type = (JSON.parse(body) as { type?: string }).type ?? null;
		} catch {
			// not JSON: kept as text
		}
		const status = signatureValid ? 204 : 401;
		received.push({ at: Date.now(), type, headers, body, signatureValid, status });
		if (received.length > MAX_KEPT) received.splice(0, received.length - MAX_KEPT);
		return c.body(null, status);
	})
	.get("/", (c) => {
		const type = c.req.query("type");
		const transaction = c.req.query("transaction");
		const list = received.filter((w) => (type === undefined || w.type === type) && (transaction === undefined || w.body.includes(transaction)));
		return c.json({ count: list.length, webhooks: list });
	});
