import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findPurchase } from "../src/ledger/history";
import { appleEmulator, appleVerifyBody } from "./support/apple-service.ts";
import { call, claimedTransaction, json, uniqueUser } from "./support/service.ts";

/** An auto-renewing subscription is owned as a whole: its renewals and plan changes belong to its owner. */

async function verify(body: unknown): Promise<{ complete_purchase: boolean; code?: string }> {
	const response = await call("POST", "/verify", body);
	expect(response.status).toBe(200);
	return json(response);
}

describe("an App Store subscription's renewals", () => {
	it("are refused to another user and granted to the owner, renewal after renewal", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: -120 });
		const renewal1 = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: -60 });
		const renewal2 = await appleEmulator.createSubscription({ renewalOf: renewal1.transactionId, expiresInSeconds: 3600 });
		const owner = uniqueUser("owner");
		const other = uniqueUser("other");
		// The owner bought it when the first period was current: its latest renewal stands for it now.
		expect(await verify(appleVerifyBody(renewal2, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
		for (const renewal of [renewal1, renewal2]) {
			expect(await verify(appleVerifyBody(renewal, { userIdentifier: other }))).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		}
		expect(await verify(appleVerifyBody(renewal2, { userIdentifier: owner, evidence: "receipt" }))).toEqual({ complete_purchase: true });
		// Each renewal the owner was granted is a history row of the owner's, under the subscription's id.
		expect(await findPurchase(env.DB, "app_store", renewal2.transactionId)).toMatchObject({ userId: owner, subscriptionId: first.transactionId, state: "active" });
		expect((await claimedTransaction("app_store", renewal2.transactionId, first.transactionId))?.userId).toBe(owner);
	});

	it("keep the owner of the first period when the first period is what the owner presented", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: 3600 });
		const owner = uniqueUser("owner");
		expect(await verify(appleVerifyBody(first, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 7200 });
		expect(await verify(appleVerifyBody(renewal, { userIdentifier: uniqueUser("thief") }))).toMatchObject({ complete_purchase: false, code: "owned_by_another_user" });
		expect(await verify(appleVerifyBody(renewal, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
	});

	it("include a plan change to another product, which is not a product mismatch", async () => {
		const monthly = await appleEmulator.createSubscription({ productId: "premium_monthly", expiresInSeconds: 3600 });
		const owner = uniqueUser("owner");
		expect(await verify(appleVerifyBody(monthly, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
		const yearly = await appleEmulator.createSubscription({ renewalOf: monthly.transactionId, productId: "premium_yearly", expiresInSeconds: 365 * 24 * 3600 });
		expect(await verify(appleVerifyBody(yearly, { userIdentifier: owner }))).toEqual({ complete_purchase: true });
		expect(await verify(appleVerifyBody(yearly, { userIdentifier: uniqueUser("other") }))).toMatchObject({ code: "owned_by_another_user" });
		expect(await findPurchase(env.DB, "app_store", yearly.transactionId)).toMatchObject({ userId: owner, productId: "premium_yearly" });
	});

	it("claimed 100 times at once by two users, through different renewals, end with one owner", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: -60 });
		const renewals = [first];
		for (let i = 0; i < 4; i++) renewals.push(await appleEmulator.createSubscription({ renewalOf: renewals.at(-1)!.transactionId, expiresInSeconds: 3600 * (i + 1) }));
		const users = [uniqueUser("a"), uniqueUser("b")];
		const answers = await Promise.all(
			Array.from({ length: 100 }, async (_, i) => {
				const user = users[i % 2]!;
				// Offline renewals only: each JWS is verified as signed, without the subscription status look-up.
				const tx = renewals[1 + (i % 4)]!;
				return { user, granted: (await verify(appleVerifyBody(tx, { userIdentifier: user }))).complete_purchase };
			}),
		);
		const winners = new Set(answers.filter((a) => a.granted).map((a) => a.user));
		expect(winners.size).toBe(1);
		const [owner] = winners;
		expect(answers.filter((a) => a.user === owner).every((a) => a.granted)).toBe(true);
		const { results } = await env.DB.prepare("SELECT DISTINCT user_id FROM purchases WHERE store = 'app_store' AND subscription_id = ?1").bind(first.transactionId).all();
		expect(results).toEqual([{ user_id: owner }]);
	});
});

describe("a subscription claimed before subscriptions were owned as a whole", () => {
	it("keeps the owner the history names, when its claim opens under the subscription's id", async () => {
		const first = await appleEmulator.createSubscription({ expiresInSeconds: 3600 });
		const renewal = await appleEmulator.createSubscription({ renewalOf: first.transactionId, expiresInSeconds: 7200 });
		const earlier = uniqueUser("earlier");
		// A row as an earlier version wrote it: the renewal claimed under its own id, the subscription unknown.
		await env.DB.prepare(
			`INSERT INTO purchases (store, transaction_id, app_id, user_id, original_transaction_id, product_id, kind, environment, state, quantity,
				purchased_at, expires_at, as_of, raw, created_at, updated_at)
			 VALUES ('app_store', ?1, '1234', ?2, ?3, 'premium_monthly', 'subscription', 'Production', 'active', 1, ?4, ?5, ?4, '{}', ?4, ?4)`,
		)
			.bind(renewal.transactionId, earlier, first.transactionId, Date.now(), renewal.expiresDate)
			.run();
		expect(await verify(appleVerifyBody(first, { userIdentifier: uniqueUser("newcomer") }))).toMatchObject({ code: "owned_by_another_user" });
		expect(await verify(appleVerifyBody(first, { userIdentifier: earlier }))).toEqual({ complete_purchase: true });
	});
});
