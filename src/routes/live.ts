import { Hono } from "hono";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import * as z from "zod";
import { findApp } from "../config/load";
import type { AppConfig } from "../config/schema";
import { channelName } from "../events/channel";
import { requireApiKey, type ApiEnv } from "../http/auth";
import type { AppEnv } from "../http/app";
import { ApiError } from "../http/errors";
import { userIdField } from "../http/fields";
import { paramsOf, queryOf } from "../http/validate";
import { describe } from "../openapi/describe";

/**
 * Live push to the app, a WebSocket per user:
 *   POST /v1/users/{userId}/live-token  (API key) → {"token", "url", "expiresAt"}: the app's backend mints it, since
 *                                        apps must never hold API keys
 *   GET  /v1/live?token=…[&since=<last message id>] → a WebSocket to the user's channel (src/events/channel.ts)
 * Tokens are short-lived JWTs (HS256, jose) scoped to one app and one user, signed with a key derived from the app's
 * API keys (every current key is tried, so rotating keys keeps tokens minted just before working).
 */

const AUDIENCE = "iap-edge:live";

const encoder = new TextEncoder();

/** A signing key of its own per API key: HMAC-SHA256 keyed by SHA-256 of a label and the key. */
async function liveKey(apiKey: string): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`iap-edge live token key\u0000${apiKey}`)));
}

const Params = z.object({ userId: userIdField });
/** Described here, read by the user's channel (src/events/channel.ts). */
const LiveQuery = z.object({
	// Optional here so that a missing token is answered 401 by the handler, as any other token problem.
	token: z.string().optional().describe("From POST /v1/users/{userId}/live-token (required)."),
	since: z.string().optional().describe("The id of the last message this device saw."),
});

export const liveTokenRoutes = new Hono<ApiEnv>().post("/:userId/live-token", describe({
	summary: "Mint a live-socket token for one user",
	description: "Your backend mints it (apps must never hold API keys); the app opens `url` as a WebSocket. Valid `liveTokenSeconds` (5 minutes by default).",
	tags: ["Events"],
	security: ["apiKey"],
	responses: { 200: { description: "The token and the socket's URL", example: { token: "eyJ…", url: "wss://iap.example.com/v1/live?token=eyJ…", expiresAt: 1763800300000 } } },
	errors: [400, 401, 429, 503],
}), requireApiKey, paramsOf(Params), async (c) => {
	const app = c.get("app");
	const { userId } = c.req.valid("param");
	const now = Math.floor(Date.now() / 1000);
	const expiresAt = now + app.liveTokenSeconds;
	const token = await new SignJWT({ app: app.id })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setSubject(userId)
		.setAudience(AUDIENCE)
		.setIssuedAt(now)
		.setExpirationTime(expiresAt)
		.sign(await liveKey(app.apiKeys[0]!));
	const url = new URL("/v1/live", c.req.url);
	url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
	url.searchParams.set("token", token);
	return c.json({ token, url: url.toString(), expiresAt: expiresAt * 1000 });
});

export const liveRoutes = new Hono<AppEnv>().get("/", describe({
	summary: "A user's live socket (WebSocket)",
	description:
		'Upgrade: websocket. Messages: `{"id", "type": "access_granted" | "access_revoked", "at", "entitlements", "productId", "transactionId", "store", "event"}`. Reconnect with `&since=<last id>` to get what was missed (the last 100). Send `ping` for `pong`.',
	tags: ["Events"],
	responses: { 101: { description: "Switching protocols: the socket is open" } },
	errors: [400, 401],
}), queryOf(LiveQuery), async (c) => {
	const token = c.req.query("token");
	if (!token) throw new ApiError("unauthorized", "a live socket needs ?token= from POST /v1/users/{userId}/live-token");
	const { app, userId } = await verifyLiveToken(c.get("config").apps, token);
	if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new ApiError("invalid_request", "this endpoint speaks WebSocket only (Upgrade: websocket)");
	const channel = c.env.CHANNELS.get(c.env.CHANNELS.idFromName(channelName(app.id, userId)));
	return channel.fetch(c.req.raw);
});

async function verifyLiveToken(apps: readonly AppConfig[], token: string): Promise<{ app: AppConfig; userId: string }> {
	// The token names its app; its signature is what proves it, checked against every API key of that app.
	let named: unknown;
	try {
		named = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).app;
	} catch {
		throw new ApiError("unauthorized", "the live token is not a token this service issued");
	}
	const app = typeof named === "string" ? findApp({ apps } as never, named) : undefined;
	if (!app) throw new ApiError("unauthorized", "the live token is not a token this service issued");
	for (const apiKey of app.apiKeys) {
		try {
			const { payload } = await jwtVerify(token, await liveKey(apiKey), { audience: AUDIENCE, algorithms: ["HS256"] });
			if (payload.app !== app.id || typeof payload.sub !== "string") break;
			return { app, userId: payload.sub };
		} catch (err) {
			if (err instanceof joseErrors.JWTExpired) throw new ApiError("unauthorized", "the live token has expired: mint a new one");
			if (!(err instanceof joseErrors.JOSEError)) throw err;
		}
	}
	throw new ApiError("unauthorized", "the live token is not valid");
}
