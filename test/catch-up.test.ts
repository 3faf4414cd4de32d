import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { catchUp } from "../src/lifecycle/catch-up";
import { findPurchase } from "../src/ledger/history";
import { readSyncState } from "../src/ledger/sync-state";
import { createLogger } from "../src/log";
import { APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleEmulator, appleVerifyBody, testConfig } from "./support/apple-service.ts";
import { SAMPLE_APP } from "./support/fixtures.ts";
import { call, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** The Cron Trigger catches up on what notifications missed: Google's voided purchases, Apple's notification history. */

async function runCron(): Promise<void> {
	const controller = createScheduledController({ scheduledTime: Date.now(), cron: "*/30 * * * *" });
	await worker.scheduled(controller, env);
}

async function verify(body: unknown) {
	return (await json(await call("POST", "/verify", body))) as { complete_purchase: boolean };
}

describe("the scheduled catch-up", () => {
	it("finds a Google refund whose notification was never sent, and marks the purchase refunded", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		const owner = uniqueUser();
		expect((await verify(googleVerifyBody(purchase, { userIdentifier: owner }))).complete_purchase).toBe(true);
		await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true, notify: false });
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.state).toBe("active");
		await runCron();
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toMatchObject({ state: "refunded", userId: owner });
		expect((await readSyncState(env.DB, SAMPLE_APP.id, "google.voided"))?.windowEnd).toBeNull();
	});

	it("finds an App Store refund in Apple's notification history, and applies it like the notification", async () => {
		const tx = await appleEmulator.createTransaction();
		const owner = uniqueUser();
		expect((await verify(appleVerifyBody(tx, { userIdentifier: owner }))).complete_purchase).toBe(true);
		await appleEmulator.updateTransaction(tx.transactionId, { revoked: "REFUND_FULL", notify: false });
		await runCron();
		expect(await findPurchase(env.DB, "app_store", tx.transactionId)).toMatchObject({ state: "refunded", userId: owner });
		const row = await env.DB.prepare("SELECT source FROM notifications WHERE store = 'app_store' AND transaction_id = ?1").bind(tx.transactionId).first<{ source: string }>();
		expect(row?.source).toBe("catch_up");
	});

	it("reads every page, and a replay of what it already applied changes nothing", async () => {
		const purchases = await Promise.all(Array.from({ length: 5 }, () => emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true })));
		for (const p of purchases) await verify(googleVerifyBody(p, { userIdentifier: uniqueUser() }));
		for (const p of purchases) await emulator.updateGooglePurchase(p.purchaseToken, { refund: true, notify: false });
		const reports = await catchUp(env, testConfig(), createLogger("test"));
		const sample = reports.find((r) => r.app === SAMPLE_APP.id && r.source === "google.voided");
		// Pages of two in tests (storePageSize): five voids take at least three pages.
		expect(sample).toMatchObject({ complete: true });
		expect(sample!.pages).toBeGreaterThanOrEqual(3);
		for (const p of purchases) expect((await findPurchase(env.DB, "google_play", p.purchaseToken))?.state).toBe("refunded");
		const again = (await catchUp(env, testConfig(), createLogger("test"))).find((r) => r.app === SAMPLE_APP.id && r.source === "google.voided");
		expect(again).toMatchObject({ complete: true });
	});

	it("stops where a store outage stopped it, and the next run resumes there without skipping anything", async () => {
		const purchases = await Promise.all(Array.from({ length: 4 }, () => emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true })));
		for (const p of purchases) await verify(googleVerifyBody(p, { userIdentifier: uniqueUser() }));
		for (const p of purchases) await emulator.updateGooglePurchase(p.purchaseToken, { refund: true, notify: false });
		// The second page of the sample app's list fails.
		await emulator.fault({ match: `${SAMPLE_APP.packageName}/purchases/voidedpurchases`, mode: "error", status: 503, times: 1 });
		const first = (await catchUp(env, testConfig(), createLogger("test"))).find((r) => r.app === SAMPLE_APP.id && r.source === "google.voided");
		expect(first).toMatchObject({ complete: false });
		expect(first?.error).toContain("503");
		const second = (await catchUp(env, testConfig(), createLogger("test"))).find((r) => r.app === SAMPLE_APP.id && r.source === "google.voided");
		expect(second).toMatchObject({ complete: true });
		for (const p of purchases) expect((await findPurchase(env.DB, "google_play", p.purchaseToken))?.state).toBe("refunded");
	});

	it("keeps Apple's history per environment and app, and the Sandbox one only for apps that accept Sandbox", async () => {
		const reports = await catchUp(env, testConfig(), createLogger("test"));
		const sample = reports.filter((r) => r.app === APPLE_SAMPLE.appId).map((r) => r.source);
		expect(sample).toEqual(expect.arrayContaining(["google.voided", "apple.history.Production"]));
		expect(sample).not.toContain("apple.history.Sandbox");
		expect(reports.filter((r) => r.app === "sandbox-app").map((r) => r.source)).toContain("apple.history.Sandbox");
	});
});
