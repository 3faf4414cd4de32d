import { verifyAmazonPurchase, type AmazonEvidence } from "./amazon/verify";
import { listAppleEvidence, verifyAppleEvidence, type AppleEvidence } from "./apple/verify";
import type { AppConfig, Config } from "./config/schema";
import { verifyGooglePurchase, type GoogleEvidence } from "./google/verify";
import type { Purchase } from "./purchase";

/** Purchase evidence, in whichever form the caller sent it, and the one dispatch to the store that can vouch for it. */
export type Evidence = GoogleEvidence | AppleEvidence | AmazonEvidence;

/**
 * Verifies evidence with its store and returns the purchase in whatever state the store says it is in (the claim
 * decides what that grants), or throws Refusal (no purchase that matches the claim) / StoreUnreachable.
 * Each store's judge has already refused another product than the one claimed (src/google/verify.ts, src/apple/judge.ts,
 * src/amazon/verify.ts).
 */
export async function verifyEvidence(app: AppConfig, config: Config, evidence: Evidence): Promise<Purchase> {
	switch (evidence.store) {
		case "google_play":
			return verifyGooglePurchase(app, config, evidence);
		case "app_store":
			return verifyAppleEvidence(app, config, evidence);
		case "amazon":
			return verifyAmazonPurchase(app, config, evidence);
	}
}

/** Every purchase the evidence holds, as its store states it now, without claiming anything: for POST /v1/purchases/check. */
export async function listEvidence(app: AppConfig, config: Config, evidence: Evidence): Promise<Purchase[]> {
	switch (evidence.store) {
		case "google_play":
			return [await verifyGooglePurchase(app, config, evidence)];
		case "app_store":
			return listAppleEvidence(app, config, evidence);
		case "amazon":
			return [await verifyAmazonPurchase(app, config, evidence)];
	}
}
