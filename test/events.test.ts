import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { ServiceEvent } from "../src/events/model";
import { LAPSE_MARGIN_MS } from "../src/ledger/claim";
import { APPLE_EVENTS } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { TEST_APPS } from "./support/fixtures.ts";
import { about, deliverNotifications } from "./support/notifications.ts";
import { bearer, call, claimedTransaction, claimObject, emulator, eventually, googleVerifyBody, json, receivedWebhooks, uniqueUser, type ReceivedWebhook } from "./support/service.ts";

/**
 * Events: every change to a purchase reaches webhooks (signed as Standard Webhooks says, through the events queue)
 * from the claim that made it. The events app sends everything to one endpoint and purchase.* to a second one.
 */

const app = { appId: TEST_APPS.events.id };
const key = bearer(TEST_APPS.events.apiKey);

async function verify(body: unknown) {
	return (await json(await call("POST", "/verify", body))) as { complete_purchase: boolean; code?: string };
}

/** Deliveries to the first endpoint (every event), signed with one secret; the second (purchase.*) is signed with two. */
const toFirstEndpoint = (w: ReceivedWebhook) => w.headers["webhook-signature"]?.split(" ").length === 1;

/**
 * The events the first endpoint received about a transaction, in the order they happened. Webhooks may arrive out of
 * order (each is a queue message of its own); each event says when it happened, for receivers to put them in order.
 */
async function eventsAbout(transactionId: string): Promise<ServiceEvent[]> {
	const events = (await receivedWebhooks(transactionId)).filter(toFirstEndpoint).map((w) => JSON.parse(w.body) as ServiceEvent);
	return events.sort((a, b) => a.at - b.at || a.sequence - b.sequence);
}

/** Their types, once there are at least `count`. */
async function typesAbout(transactionId: string, count: number): Promise<string[]> {
	let seen: string[] = [];
	try {
		return await eventually(async () => {
			seen = (await eventsAbout(transactionId)).map((e) => e.type);
			return seen.length >= count ? seen : undefined;
		});
	} catch (err) {
		throw new Error(`expected ${count} events, got ${JSON.stringify(seen)}`, { cause: err });
	}
}

describe("the events a change makes", () => {
	it("a grant is purchase.granted, then entitlement.granted; a refund purchase.refunded, then entitlement.lost", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId });
		const owner = uniqueUser();
		expect(await verify(appleVerifyBody(tx, { userIdentifier: owner, ...app }))).toEqual({ complete_purchase: true });
		expect(await typesAbout(tx.transactionId, 2)).toEqual(["purchase.granted", "entitlement.granted"]);
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: true });
		await deliverNotifications({ only: about(tx.transactionId) });
		expect(await typesAbout(tx.transactionId, 4)).toEqual(["purchase.granted", "entitlement.granted", "purchase.refunded", "entitlement.lost"]);
		const [granted] = await eventsAbout(tx.transactionId);
		expect(granted).toMatchObject({ type: "purchase.granted", appId: TEST_APPS.events.id, userId: owner, store: "app_store", purchase: { transactionId: tx.transactionId, productId: "premium_lifetime", state: "active", userId: owner } });
	});

	it("a restore by the owner is purchase.restored; the same purchase again is nothing new", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.events.packageName, acknowledged: true });
		const owner = uniqueUser();
		await verify(googleVerifyBody(purchase, { userIdentifier: owner, ...app }));
		await verify(googleVerifyBody(purchase, { userIdentifier: owner, ...app }));
		await verify(googleVerifyBody(purchase, { userIdentifier: owner, ...app, status: "restored" }));
		expect(await typesAbout(purchase.purchaseToken, 3)).toEqual(["purchase.granted", "entitlement.granted", "purchase.restored"]);
	});

	it("another user presenting an owned purchase is ownership.refused (a sharing signal), naming who presented it", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.events.packageName, acknowledged: true });
		const [owner, other] = [uniqueUser("owner"), uniqueUser("other")];
		await verify(googleVerifyBody(purchase, { userIdentifier: owner, ...app }));
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: other, ...app }))).toMatchObject({ code: "owned_by_another_user" });
		await typesAbout(purchase.purchaseToken, 3);
		const refused = (await eventsAbout(purchase.purchaseToken)).find((e) => e.type === "ownership.refused");
		expect(refused).toMatchObject({ userId: owner, ownership: { fromUserId: owner, toUserId: owner, presentedBy: other, action: "refused" } });
	});

	it("a renewal is subscription.renewed; renewal turned off subscription.canceled; expiry subscription.expired and entitlement.lost", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", packageName: TEST_APPS.events.packageName, acknowledged: true });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser(), ...app }));
		// Each notification delivered as it happens: the service asks Google for the state at that moment.
		for (const change of [{ expiresInSeconds: 60 * 24 * 3600 }, { state: "canceled" }, { state: "expired", expiresInSeconds: -1 }]) {
			await emulator.updateGooglePurchase(purchase.purchaseToken, change);
			await deliverNotifications({ only: about(purchase.purchaseToken) });
		}
		const types = await typesAbout(purchase.purchaseToken, 6);
		expect(types).toEqual(["purchase.granted", "entitlement.granted", "subscription.renewed", "subscription.canceled", "subscription.expired", "entitlement.lost"]);
	});

	it("a subscription running out with no store saying so is subscription.expired and entitlement.lost, from the claim's alarm", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", packageName: TEST_APPS.events.packageName, acknowledged: true, expiresInSeconds: 2 });
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser(), ...app }))).toEqual({ complete_purchase: true });
		const expiresAt = (await claimedTransaction("google_play", purchase.purchaseToken))!.purchase.expiresAt!;
		// The claim wakes a minute after the expiry, giving a store's renewal time to arrive first.
		const alarm = await runInDurableObject(claimObject("google_play", purchase.purchaseToken), (_, state) => state.storage.getAlarm());
		expect(alarm).toBe(expiresAt + LAPSE_MARGIN_MS);
		await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 50));
		expect(await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken))).toBe(true);
		expect(await typesAbout(purchase.purchaseToken, 4)).toEqual(["purchase.granted", "entitlement.granted", "subscription.expired", "entitlement.lost"]);
		// Reported once: nothing is left to watch, and waking again says nothing new.
		expect(await runInDurableObject(claimObject("google_play", purchase.purchaseToken), (_, state) => state.storage.getAlarm())).toBeNull();
	});

	it("a subscription renewed before the claim wakes is not reported expired", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", packageName: TEST_APPS.events.packageName, acknowledged: true, expiresInSeconds: 2 });
		await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser(), ...app }));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { expiresInSeconds: 30 * 24 * 3600 });
		await deliverNotifications({ only: about(purchase.purchaseToken) });
		await new Promise((resolve) => setTimeout(resolve, 2100));
		await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken));
		expect(await typesAbout(purchase.purchaseToken, 3)).toEqual(["purchase.granted", "entitlement.granted", "subscription.renewed"]);
		const renewedExpiry = (await claimedTransaction("google_play", purchase.purchaseToken))!.purchase.expiresAt!;
		expect(await runInDurableObject(claimObject("google_play", purchase.purchaseToken), (_, state) => state.storage.getAlarm())).toBe(renewedExpiry + LAPSE_MARGIN_MS);
	});

	it("a support transfer is ownership.transferred, and the entitlement moves with it", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId });
		const [from, to] = [uniqueUser("from"), uniqueUser("to")];
		await verify(appleVerifyBody(tx, { userIdentifier: from, ...app }));
		await call("POST", `/v1/purchases/app_store/${tx.transactionId}/transfer`, { toUserId: to, reason: "ticket" }, key);
		const types = await typesAbout(tx.transactionId, 5);
		expect(types.slice(0, 3)).toEqual(["purchase.granted", "entitlement.granted", "ownership.transferred"]);
		const events = await eventsAbout(tx.transactionId);
		expect(events.find((e) => e.type === "ownership.transferred")).toMatchObject({ userId: to, ownership: { fromUserId: from, toUserId: to, action: "transfer", reason: "ticket" } });
		// The one who had it loses the entitlement; the one who has it now gains it.
		expect(events.slice(3).map((e) => [e.type, e.userId]).sort()).toEqual([["entitlement.granted", to], ["entitlement.lost", from]]);
	});
});

describe("a webhook", () => {
	it("verifies with the standardwebhooks library, under each of two secrets during rotation, with a stable webhook-id", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId });
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser(), ...app }));
		// purchase.granted and entitlement.granted to the first endpoint, purchase.granted to the second.
		const received = await eventually(async () => {
			const all = await receivedWebhooks(tx.transactionId);
			return all.length >= 3 ? all : undefined;
		});
		expect(received.every((w) => w.signatureValid)).toBe(true);
		const rotated = received.find((w) => w.headers["webhook-signature"]!.split(" ").length === 2)!;
		expect(JSON.parse(rotated.body)).toMatchObject({ type: "purchase.granted" });
		// A receiver holding only the old secret, or only the new one, verifies it.
		const { webhooks } = JSON.parse(env.APPS_CONFIG).apps.find((a: { id: string }) => a.id === TEST_APPS.events.id) as { webhooks: { secret: string | string[] }[] };
		for (const secret of [webhooks[1]!.secret].flat()) expect(new Webhook(secret).verify(rotated.body, rotated.headers)).toMatchObject({ type: "purchase.granted" });
		const event = JSON.parse(rotated.body) as ServiceEvent;
		expect(rotated.headers["webhook-id"]).toBe(event.id);
	});

	it("is retried until the receiver takes it: failing twice, then the same webhook-id a third time, three attempts logged", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId, productId: "coins_100", type: "Consumable" });
		// The second endpoint (purchase.*) fails twice; the first is not affected.
		await emulator.fault({ match: "?endpoint=purchases", mode: "error", status: 500, times: 2 });
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser(), ...app }));
		const delivered = await eventually(async () => {
			const list = await json(await call("GET", `/v1/webhooks/deliveries?transactionId=${tx.transactionId}`, undefined, key));
			const d = list.deliveries.find((x: { status: string; eventType: string; attempts: number }) => x.eventType === "purchase.granted" && x.status === "delivered" && x.attempts === 3);
			return d;
		}, 15_000);
		expect(delivered).toMatchObject({ attempts: 3, lastStatus: 204 });
		const copies = (await receivedWebhooks(tx.transactionId)).filter((w) => JSON.parse(w.body).type === "purchase.granted");
		expect(new Set(copies.map((w) => w.headers["webhook-id"])).size).toBe(1);
	});

describe("200 concurrent grants", () => {
	it("make 200 purchase.granted webhooks, none lost, none duplicated once deduplicated by webhook-id", async () => {
		const purchases = await Promise.all(Array.from({ length: 200 }, () => emulator.createGooglePurchase({ productId: "coins_100", packageName: TEST_APPS.events.packageName, acknowledged: true })));
		const answers = await Promise.all(purchases.map((p) => verify(googleVerifyBody(p, { userIdentifier: uniqueUser(), ...app }))));
		expect(answers.every((a) => a.complete_purchase)).toBe(true);
		const tokens = new Set(purchases.map((p) => p.purchaseToken));
		const granted = await eventually(async () => {
			const all = (await receivedWebhooks()).filter((w) => w.signatureValid && w.headers["webhook-signature"]!.split(" ").length === 1);
			const ids = new Map<string, string>();
			for (const w of all) {
				const event = JSON.parse(w.body) as ServiceEvent;
				if (event.type === "purchase.granted" && tokens.has(event.purchase.transactionId)) ids.set(w.headers["webhook-id"]!, event.purchase.transactionId);
			}
			return ids.size >= 200 ? ids : undefined;
		}, 30_000);
		expect(granted.size).toBe(200);
		expect(new Set(granted.values()).size).toBe(200);
	});
});

describe("a webhook receiver down for good", () => {
	it("ends in the dead-letter queue, the delivery log says so, and it can be redelivered", async () => {
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId, productId: "coins_100", type: "Consumable" });
		// Every attempt fails: four per delivery (three retries in tests), one delivery to each of the two endpoints.
		await emulator.fault({ match: "/_emulator/webhooks", mode: "error", status: 503, times: 8 });
		await verify(appleVerifyBody(tx, { userIdentifier: uniqueUser(), ...app }));
		const dead = await eventually(async () => {
			const list = await json(await call("GET", `/v1/webhooks/deliveries?status=dead&transactionId=${tx.transactionId}`, undefined, key));
			return list.deliveries.length >= 2 ? list.deliveries : undefined;
		}, 20_000);
		expect(dead[0]).toMatchObject({ status: "dead", lastStatus: 503, lastError: expect.stringContaining("gave up") });
		// Redelivered on request (the receiver is back: the fault was for eight attempts, four to each endpoint).
		const redeliver = await call("POST", `/v1/webhooks/deliveries/${encodeURIComponent(dead[0].id)}/redeliver`, undefined, key);
		expect(redeliver.status).toBe(202);
		await eventually(async () => {
			const list = await json(await call("GET", `/v1/webhooks/deliveries?status=delivered&transactionId=${tx.transactionId}`, undefined, key));
			return list.deliveries.length >= 1 ? true : undefined;
		}, 10_000);
	});
});
});

describe("the event log", () => {
	it("holds a grant's events from the moment /verify answers: the claim writes them to D1 with the purchase", async () => {
		const owner = uniqueUser("log");
		const tx = await appleEmulator.createTransaction({ bundleId: APPLE_EVENTS.bundleId });
		expect(await verify(appleVerifyBody(tx, { userIdentifier: owner, ...app }))).toEqual({ complete_purchase: true });
		const detail = await json(await call("GET", `/v1/purchases/app_store/${tx.transactionId}`, undefined, key));
		expect(detail.events).toEqual([expect.objectContaining({ type: "purchase.granted", transactionId: tx.transactionId, userId: owner })]);
		// Counted once, though the queue's consumer sees it too.
		const counted = await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE transaction_id = ?1 AND type = 'purchase.granted'`).bind(tx.transactionId).first<{ n: number }>();
		expect(counted?.n).toBe(1);
	});

	it("is written by claims made before the outbox knew what D1 holds (storage version 2), once upgraded", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription", packageName: TEST_APPS.events.packageName });
		expect(await verify(googleVerifyBody(purchase, { userIdentifier: uniqueUser("log"), appId: TEST_APPS.events.id, productID: "premium_monthly" }))).toEqual({ complete_purchase: true });
		const stub = claimObject("google_play", purchase.purchaseToken);
		// Back to version 2's storage, as a claim made before this version has it.
		await runInDurableObject(stub, (_, state) => {
			state.storage.sql.exec(`ALTER TABLE outbox DROP COLUMN recorded`);
			state.storage.sql.exec(`UPDATE schema_version SET version = 2`);
		});
		await evictDurableObject(stub);
		// The next use upgrades it, and the events it makes are recorded with the change, as in a new claim.
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -60, notify: false });
		const reverified = await call("POST", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}/reverify`, { reason: "lapse check" }, key);
		expect(await json(reverified)).toMatchObject({ status: "applied", after: "expired" });
		const version = await runInDurableObject(stub, (_, state) => state.storage.sql.exec<{ version: number }>(`SELECT version FROM schema_version`).one().version);
		expect(version).toBe(3);
		const detail = await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, key));
		const types = detail.events.map((e: { type: string }) => e.type);
		// The lapse also turned renewal off: two events at the same moment, in either order.
		expect(types[0]).toBe("purchase.granted");
		expect(types.slice(1).sort()).toEqual(["subscription.canceled", "subscription.expired"]);
	});
});
