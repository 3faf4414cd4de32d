import { Refusal } from "./answers";
import { verifyAppleEvidence, type AppleEvidence } from "./apple/verify";
import type { AppConfig, Config } from "./config/schema";
import { verifyGooglePurchase, type GoogleEvidence } from "./google/verify";
import { isEntitled, type Purchase } from "./purchase";

/** Purchase evidence, in whichever form the caller sent it, and the one dispatch to the store that can vouch for it. */
export type Evidence = GoogleEvidence | AppleEvidence;

/**
 * Verifies evidence with its store and returns a purchase that grants access now, or throws Refusal / StoreUnreachable.
 * Each store's judge has already refused another product than the one claimed (src/google/verify.ts, src/apple/judge.ts).
 */
export async function verifyEvidence(app: AppConfig, config: Config, evidence: Evidence): Promise<Purchase> {
	let purchase: Purchase;
	switch (evidence.store) {
		case "google_play":
			purchase = await verifyGooglePurchase(app, config, evidence);
			break;
		case "app_store":
			purchase = await verifyAppleEvidence(app, config, evidence);
			break;
	}
	if (!isEntitled(purchase)) {
		throw new Refusal(purchase.state === "expired" ? "expired" : "inactive", `the purchase is ${purchase.state}`, purchase.raw, {
			store: purchase.store,
			transactionId: purchase.transactionId,
			state: purchase.state,
		});
	}
	return purchase;
}
