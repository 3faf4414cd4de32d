import type { AppConfig, Config } from "../config/schema";
import { GoogleRejected } from "../google/client";
import { googleClientFor } from "../google/verify";
import type { Purchase } from "../purchase";
import { findPurchase } from "./history";

/**
 * A Google subscription's identity. After an upgrade, a downgrade or a resubscribe Google issues a new purchase
 * token whose linkedPurchaseToken names the one it replaces; Google's guidance is to treat the chain as one
 * subscription. Its first token names the claim, so the new token belongs to whoever owns the old one.
 *
 * Each link is looked up in the history first; a token the history does not know is asked of Google (one call per
 * unknown link, rarely more than one). A token's link never changes, so the answer is the same from anywhere.
 */

/** Chains longer than this are not followed further: the last token reached names the subscription. */
const MAX_LINKS = 10;

export async function withGoogleSubscription(env: Env, app: AppConfig, config: Config, purchase: Purchase): Promise<Purchase> {
	if (purchase.store !== "google_play" || purchase.linkedTransactionId === null) return purchase;
	let token = purchase.linkedTransactionId;
	for (let links = 1; links < MAX_LINKS; links++) {
		const known = await findPurchase(env.DB, "google_play", token);
		if (known) return { ...purchase, subscriptionId: known.subscriptionId ?? token };
		const next = await linkOf(app, config, token);
		if (next === null) break;
		token = next;
	}
	return { ...purchase, subscriptionId: token };
}

/** What Google says `token` replaced, if anything; nothing for a token Google no longer knows (kept 60 days past expiry). */
async function linkOf(app: AppConfig, config: Config, token: string): Promise<string | null> {
	try {
		const { value } = await googleClientFor(app, config).getSubscription(token);
		return value.linkedPurchaseToken ?? null;
	} catch (err) {
		if (err instanceof GoogleRejected) return null;
		throw err;
	}
}
