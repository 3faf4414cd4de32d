import { loadConfig, findApp } from "../config/load";
import type { Purchase } from "../purchase";
import { googleClientFor } from "../google/verify";
import { GoogleRejected } from "../google/client";

/**
 * What the ledger asks of a store after a grant: acknowledge (Google refunds unacknowledged purchases after
 * three days) and consume. Called from the claim's Durable Object, which retries on any error except
 * StoreActionRefused.
 */

/** The store answered that this action can never succeed for this purchase. */
export class StoreActionRefused extends Error {
	override name = "StoreActionRefused";
}

function appFor(env: Env, purchase: Purchase) {
	const loaded = loadConfig(env);
	if (!loaded.ok) throw loaded.error;
	const app = findApp(loaded.config, purchase.appId);
	if (!app) throw new Error(`app ${purchase.appId} is no longer configured`);
	return { app, config: loaded.config };
}

export async function acknowledgeWithStore(env: Env, purchase: Purchase): Promise<void> {
	if (purchase.store !== "google_play") return;
	const { app, config } = appFor(env, purchase);
	const client = googleClientFor(app, config);
	try {
		if (purchase.kind === "subscription") await client.acknowledgeSubscription(purchase.productId, purchase.transactionId);
		else await client.acknowledgeProduct(purchase.productId, purchase.transactionId);
	} catch (err) {
		if (err instanceof GoogleRejected) throw new StoreActionRefused(err.message);
		throw err;
	}
}

export async function consumeWithStore(env: Env, purchase: Purchase): Promise<void> {
	if (purchase.store !== "google_play") return;
	const { app, config } = appFor(env, purchase);
	try {
		await googleClientFor(app, config).consumeProduct(purchase.productId, purchase.transactionId);
	} catch (err) {
		if (err instanceof GoogleRejected) throw new StoreActionRefused(err.message);
		throw err;
	}
}
