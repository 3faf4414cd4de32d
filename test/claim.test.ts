import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, claimedTransaction, claimObject, emulator, googleVerifyBody, json, uniqueUser } from "./support/service.ts";
import { findPurchase } from "../src/ledger/history";

/** The exactly-once claim: one owner per transaction, whatever the concurrency, and nothing lost after a grant. */

describe("100 concurrent claims of one token by two users", () => {
	it("resolve to exactly one owner and one history row", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const users = [uniqueUser("a"), uniqueUser("b")];
		const answers = await Promise.all(
			Array.from({ length: 100 }, async (_, i) => {
				const user = users[i % 2]!;
				const response = await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user }));
				expect(response.status).toBe(200);
				return { user, granted: (await json(response)).complete_purchase as boolean };
			}),
		);
		const winners = new Set(answers.filter((a) => a.granted).map((a) => a.user));
		expect(winners.size).toBe(1);
		const [owner] = winners;
		// Every request of the owner completes (restores are idempotent); every request of the other is refused.
		expect(answers.filter((a) => a.user === owner).every((a) => a.granted)).toBe(true);
		expect(answers.filter((a) => a.user !== owner).some((a) => a.granted)).toBe(false);
		const { results } = await env.DB.prepare("SELECT user_id FROM purchases WHERE transaction_id = ?1").bind(purchase.purchaseToken).all();
		expect(results).toEqual([{ user_id: owner }]);
		expect((await claimedTransaction("google_play", purchase.purchaseToken))?.userId).toBe(owner);
	});
});

describe("a grant whose history write fails", () => {
	async function breakHistoryFor(token: string) {
		// A trigger fails D1 writes for this one transaction only, leaving the rest of the suite alone.
		const name = `fail_${crypto.randomUUID().replaceAll("-", "")}`;
		await env.DB.exec(`CREATE TRIGGER ${name} BEFORE INSERT ON purchases WHEN NEW.transaction_id = '${token}' BEGIN SELECT RAISE(ABORT, 'simulated D1 outage'); END;`);
		return () => env.DB.exec(`DROP TRIGGER ${name}`);
	}

	it("tells the app to retry (503), keeps the claim, and completes on the next attempt", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		const user = uniqueUser();
		const repair = await breakHistoryFor(purchase.purchaseToken);
		const failed = await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user }));
		expect(failed.status).toBe(503);
		expect((await json(failed)).error.code).toBe("history_unavailable");
		expect(failed.headers.get("retry-after")).toBeTruthy();
		// The claim already holds: nobody else can take the purchase meanwhile.
		expect((await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: uniqueUser() })))).complete_purchase).toBe(false);
		expect(await findPurchase(env.DB, "google_play", purchase.purchaseToken)).toBeNull();

		await repair();
		expect(await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user })))).toEqual({ complete_purchase: true });
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.userId).toBe(user);
	});

	it("is written by the claim's alarm even if the app never retries", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		const user = uniqueUser();
		const repair = await breakHistoryFor(purchase.purchaseToken);
		expect((await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user }))).status).toBe(503);
		await repair();
		expect(await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken))).toBe(true);
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.userId).toBe(user);
		expect((await claimedTransaction("google_play", purchase.purchaseToken))?.historySynced).toBe(true);
	});
});

describe("acknowledging a Google purchase after the grant", () => {
	async function acknowledgements(token: string, endpoint = "google.products.acknowledge") {
		return emulator.calls(token, endpoint);
	}

	async function eventually(check: () => Promise<boolean>) {
		for (let i = 0; i < 100; i++) {
			if (await check()) return;
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
		throw new Error("condition not met within 2 s");
	}

	it("happens exactly once, even when the purchase is verified again", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const user = uniqueUser();
		expect((await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user })))).complete_purchase).toBe(true);
		await eventually(async () => (await acknowledgements(purchase.purchaseToken)) === 1);
		expect((await emulator.googlePurchase(purchase.purchaseToken)).acknowledged).toBe(true);
		await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user }));
		await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken));
		expect(await acknowledgements(purchase.purchaseToken)).toBe(1);
	});

	it("uses the subscriptions endpoint for subscriptions", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await call("POST", "/verify", googleVerifyBody(purchase));
		await eventually(async () => (await acknowledgements(purchase.purchaseToken, "google.subscriptions.acknowledge")) === 1);
		expect((await emulator.googlePurchase(purchase.purchaseToken)).acknowledged).toBe(true);
	});

	it("is not sent for a purchase the app already acknowledged", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", acknowledged: true });
		await call("POST", "/verify", googleVerifyBody(purchase));
		expect((await claimedTransaction("google_play", purchase.purchaseToken))?.ackState).toBe("none");
		expect(await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken))).toBe(false);
		expect(await acknowledgements(purchase.purchaseToken)).toBe(0);
	});

	it("is retried after a failure until Google confirms, without undoing the grant", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await emulator.fault({ match: `${purchase.purchaseToken}:acknowledge`, mode: "error", status: 503 });
		const user = uniqueUser();
		expect((await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: user })))).complete_purchase).toBe(true);
		await eventually(async () => (await acknowledgements(purchase.purchaseToken)) === 1);
		const held = () => claimedTransaction("google_play", purchase.purchaseToken);
		await eventually(async () => (await held())?.ackAttempts === 1);
		expect((await held())?.ackState).toBe("pending");
		expect((await emulator.googlePurchase(purchase.purchaseToken)).acknowledged).toBe(false);
		expect((await findPurchase(env.DB, "google_play", purchase.purchaseToken))?.userId).toBe(user);

		expect(await runDurableObjectAlarm(claimObject("google_play", purchase.purchaseToken))).toBe(true);
		expect(await acknowledgements(purchase.purchaseToken)).toBe(2);
		expect((await held())?.ackState).toBe("done");
		expect((await emulator.googlePurchase(purchase.purchaseToken)).acknowledged).toBe(true);
	});
});
