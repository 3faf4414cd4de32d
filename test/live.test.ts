import { evictDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { channelName, type LiveMessage } from "../src/events/channel";
import type { ServiceEvent } from "../src/events/model";
import { APPLE_EVENTS } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { SAMPLE_APP, TEST_APPS } from "./support/fixtures.ts";
import { about, deliverNotifications } from "./support/notifications.ts";
import { bearer, call, json, uniqueUser } from "./support/service.ts";

/** Live push: a WebSocket per user, told within a second when the user gains or loses access. */

const app = { appId: TEST_APPS.events.id };

async function liveToken(userId: string, apiKey: string = TEST_APPS.events.apiKey): Promise<{ token: string; url: string; expiresAt: number }> {
	const response = await call("POST", `/v1/users/${encodeURIComponent(userId)}/live-token`, undefined, bearer(apiKey));
	expect(response.status).toBe(200);
	return json(response);
}

function upgrade(query: string): Promise<Response> {
	return exports.default.fetch(new Request(`https://iap-edge.test/v1/live?${query}`, { headers: { upgrade: "websocket" } }));
}

interface Socket {
	ws: WebSocket;
	messages: LiveMessage[];
	next(predicate: (m: LiveMessage) => boolean, ms?: number): Promise<LiveMessage>;
}

async function connect(token: string, since?: string): Promise<Socket> {
	const response = await upgrade(`token=${encodeURIComponent(token)}${since ? `&since=${since}` : ""}`);
	expect(response.status).toBe(101);
	const ws = response.webSocket!;
	ws.accept();
	const messages: LiveMessage[] = [];
	const waiting: { predicate: (m: LiveMessage) => boolean; resolve: (m: LiveMessage) => void }[] = [];
	ws.addEventListener("message", (event) => {
		if (typeof event.data !== "string" || event.data === "pong") return;
		const message = JSON.parse(event.data) as LiveMessage;
		messages.push(message);
		for (const w of waiting.filter((x) => x.predicate(message))) {
			waiting.splice(waiting.indexOf(w), 1);
			w.resolve(message);
		}
	});
	return {
		ws,
		messages,
		next(predicate, ms = 1_000) {
			const already = messages.find(predicate);
			if (already) return Promise.resolve(already);
			return new Promise((resolve, reject) => {
				const timer = setTimeout(() => reject(new Error(`no matching message within ${ms} ms; got ${JSON.stringify(messages)}`)), ms);
				waiting.push({ predicate, resolve: (m) => (clearTimeout(timer), resolve(m)) });
			});
		},
	};
}

async function buy(user: string) {
	const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId });
	const answer = await json(await call("POST", "/verify", appleVerifyBody(tx, { userIdentifier: user, ...app })));
	expect(answer).toEqual({ complete_purchase: true });
	return tx;
}

/** A live token as the service makes them, with any claim made wrong (tests know the API key it is derived from). */
async function forgedToken(claims: { app?: string; sub?: string; exp?: number; aud?: string }, apiKey: string = TEST_APPS.events.apiKey): Promise<string> {
	const key = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`iap-edge live token key\u0000${apiKey}`)));
	const now = Math.floor(Date.now() / 1000);
	return new SignJWT({ app: claims.app ?? TEST_APPS.events.id })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setSubject(claims.sub ?? "someone")
		.setAudience(claims.aud ?? "iap-edge:live")
		.setIssuedAt(now - 600)
		.setExpirationTime(claims.exp ?? now + 300)
		.sign(key);
}

describe("a live token", () => {
	it("is minted by the app's backend with its API key, short-lived, with the socket's URL", async () => {
		const before = Date.now();
		const { token, url, expiresAt } = await liveToken("user-1");
		expect(url).toBe(`wss://iap-edge.test/v1/live?token=${encodeURIComponent(token).replace(/%2E/g, ".")}`);
		expect(expiresAt).toBeGreaterThan(before);
		expect(expiresAt).toBeLessThanOrEqual(before + 300_000 + 1000);
		expect((await call("POST", "/v1/users/user-1/live-token")).status).toBe(401);
	});

	it.each([
		["tampered", async () => `${(await liveToken("u")).token.slice(0, -4)}AAAA`],
		["expired", () => forgedToken({ exp: Math.floor(Date.now() / 1000) - 10 })],
		["for another app, signed with this app's key", () => forgedToken({ app: SAMPLE_APP.id })],
		["signed with another app's key", () => forgedToken({}, SAMPLE_APP.apiKey)],
		["for another audience", () => forgedToken({ aud: "something-else" })],
		["not a token at all", async () => "not-a-token"],
	])("is refused 401 before the upgrade when %s", async (_, make) => {
		const response = await upgrade(`token=${encodeURIComponent(await make())}`);
		expect(response.status).toBe(401);
		expect(response.webSocket).toBeNull();
	});

	it("is required, and the request must be a WebSocket upgrade", async () => {
		expect((await upgrade("")).status).toBe(401);
		const plain = await exports.default.fetch(new Request(`https://iap-edge.test/v1/live?token=${encodeURIComponent((await liveToken("u")).token)}`));
		expect(plain.status).toBe(400);
	});
});

describe("a user's live socket", () => {
	it("receives access_granted within a second of a grant, on every device, and another user's socket nothing", async () => {
		const [user, other] = [uniqueUser("live"), uniqueUser("other")];
		const phone = await connect((await liveToken(user)).token);
		const tablet = await connect((await liveToken(user)).token);
		const stranger = await connect((await liveToken(other)).token);
		const tx = await buy(user);
		for (const device of [phone, tablet]) {
			const message = await device.next((m) => m.transactionId === tx.transactionId && m.type === "access_granted", 1_000);
			expect(message).toMatchObject({ type: "access_granted", productId: "premium_lifetime", store: "app_store" });
		}
		const withEntitlement = await phone.next((m) => m.transactionId === tx.transactionId && m.entitlements.includes("premium"), 2_000);
		expect(withEntitlement.entitlements).toEqual(["premium"]);
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(stranger.messages).toEqual([]);
		for (const s of [phone, tablet, stranger]) s.ws.close();
	});

	it("receives access_revoked on a refund", async () => {
		const user = uniqueUser("live");
		const socket = await connect((await liveToken(user)).token);
		const tx = await buy(user);
		await socket.next((m) => m.type === "access_granted");
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		await deliverNotifications({ only: about(tx.transactionId) });
		expect(await socket.next((m) => m.type === "access_revoked" && m.event === "purchase.refunded", 2_000)).toMatchObject({ transactionId: tx.transactionId });
		socket.ws.close();
	});

	it("replays what it missed when it reconnects with ?since=", async () => {
		const user = uniqueUser("live");
		const first = await connect((await liveToken(user)).token);
		await buy(user);
		const seen = await first.next((m) => m.type === "access_granted");
		first.ws.close();
		const second = await buy(user);
		// Give the second grant time to reach the channel while no socket is open.
		await new Promise((resolve) => setTimeout(resolve, 500));
		const again = await connect((await liveToken(user)).token, seen.id);
		const missed = await again.next((m) => m.transactionId === second.transactionId && m.type === "access_granted", 1_000);
		expect(missed).toBeDefined();
		expect(again.messages.some((m) => m.id === seen.id)).toBe(false);
		again.ws.close();
	});

	it("tells a socket once when the same events are handed over twice at once (a retry racing the first hand-over)", async () => {
		const user = uniqueUser("live");
		const socket = await connect((await liveToken(user)).token);
		const now = Date.now();
		const event: ServiceEvent = {
			id: crypto.randomUUID(),
			type: "purchase.granted",
			at: now,
			appId: TEST_APPS.events.id,
			userId: user,
			store: "app_store",
			claim: `app_store:${user}-tx`,
			sequence: 1,
			purchase: {
				appId: TEST_APPS.events.id, store: "app_store", environment: "Sandbox", transactionId: `${user}-tx`, originalTransactionId: `${user}-tx`, subscriptionId: null,
				linkedTransactionId: null, orderId: null, productId: "premium_lifetime", kind: "non_consumable", purchasedAt: now, expiresAt: null, graceExpiresAt: null,
				willRenew: null, state: "active", quantity: 1, price: null, currency: null, needsAcknowledgement: false, asOf: now, userId: user,
			},
		};
		const channel = env.CHANNELS.get(env.CHANNELS.idFromName(channelName(TEST_APPS.events.id, user)));
		await Promise.all([channel.publish(TEST_APPS.events.id, user, [event]), channel.publish(TEST_APPS.events.id, user, [event])]);
		await socket.next((m) => m.id === event.id);
		// Anything the second hand-over told would be on its way by now.
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(socket.messages.filter((m) => m.id === event.id)).toHaveLength(1);
		socket.ws.close();
	});

	it("keeps working after its Durable Object is evicted (hibernation)", async () => {
		const user = uniqueUser("live");
		const socket = await connect((await liveToken(user)).token);
		const channel = env.CHANNELS.get(env.CHANNELS.idFromName(channelName(TEST_APPS.events.id, user)));
		await evictDurableObject(channel);
		const pong = new Promise<string>((resolve) => socket.ws.addEventListener("message", (e) => e.data === "pong" && resolve("pong")));
		socket.ws.send("ping");
		expect(await pong).toBe("pong");
		const tx = await buy(user);
		expect(await socket.next((m) => m.transactionId === tx.transactionId, 2_000)).toMatchObject({ type: "access_granted" });
		socket.ws.close();
	});
});
