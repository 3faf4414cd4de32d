import { verifyAmazonPurchase, type AmazonEvidence } from "./amazon/verify";
import { appleBucketOf, appleTransactionIdOf, listAppleEvidence, verifyAppleEvidence, type AppleEvidence } from "./apple/verify";
import type { AppConfig, Config } from "./config/schema";
import { googleLookupOf, verifyGooglePurchase, type GoogleEvidence } from "./google/verify";
import type { Presented } from "./ledger/replay";
import type { Purchase } from "./purchase";
import type { BucketRef } from "./quota/buckets";

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

/**
 * What the evidence names, told without asking the store, so the ledger may answer a replay (src/ledger/replay.ts);
 * undefined when only the store can tell. May refuse at once what the evidence itself contradicts (Google's purchase
 * JSON naming another package or product), as verification would before asking anyone.
 */
export function presentedOf(app: AppConfig, evidence: Evidence): Presented | undefined {
	switch (evidence.store) {
		case "google_play": {
			const type = googleLookupOf(app, evidence);
			return { store: "google_play", transactionId: evidence.purchaseToken, productId: evidence.productId, kind: type === "subscription" ? "subscription" : "one_time" };
		}
		case "app_store": {
			const transactionId = appleTransactionIdOf(app, evidence);
			if (transactionId === undefined) return undefined;
			const listed = app.products[evidence.productId];
			return { store: "app_store", transactionId, productId: evidence.productId, ...(listed ? { kind: listed === "subscription" ? "subscription" : "one_time" } : {}) };
		}
		case "amazon": {
			const listed = app.products[evidence.productId];
			return {
				store: "amazon",
				transactionId: evidence.receiptId,
				productId: evidence.productId,
				storeUserId: evidence.amazonUserId,
				...(listed ? { kind: listed === "subscription" ? "subscription" : "one_time" } : {}),
			};
		}
	}
}

/**
 * Everything a verification's answer depends on, as one key: evidence with the same key gets the same answer from
 * the store, so concurrent verifications may share one call and a "does not exist" may be remembered
 * (src/quota/recall.ts). Undefined for evidence not worth it (a signed transaction is checked offline; a receipt is
 * large and rarely replayed concurrently).
 */
export function recallKeyOf(app: AppConfig, evidence: Evidence): string | undefined {
	switch (evidence.store) {
		case "google_play":
			return JSON.stringify([app.id, evidence.store, googleLookupOf(app, evidence), evidence.productId, evidence.purchaseToken]);
		case "app_store":
			// The user matters where transactions are bound to users (appAccountTokenIsUserUuid).
			return evidence.form === "transaction_id" ? JSON.stringify([app.id, evidence.store, evidence.transactionId, evidence.productId, evidence.userId]) : undefined;
		case "amazon":
			// RVS answers per Amazon user: another user id may be refused (497) where this one is not.
			return JSON.stringify([app.id, evidence.store, evidence.receiptId, evidence.amazonUserId, evidence.productId]);
	}
}

/** The quota bucket a verification of this evidence spends (or saves), if it calls a store at all. */
export function bucketOfEvidence(app: AppConfig, evidence: Evidence): BucketRef | undefined {
	switch (evidence.store) {
		case "google_play":
			return { appId: app.id, store: evidence.store, bucket: googleLookupOf(app, evidence) === "subscription" ? "subscriptions" : "one_time_purchases", environment: "Production" };
		case "app_store": {
			const bucket = appleBucketOf(app, evidence);
			return bucket === undefined ? undefined : { appId: app.id, store: evidence.store, bucket, environment: "Production" };
		}
		case "amazon":
			return { appId: app.id, store: evidence.store, bucket: "receipts", environment: app.amazon?.sandbox ? "Sandbox" : "Production" };
	}
}
