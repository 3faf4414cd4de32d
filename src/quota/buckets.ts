import type { Store } from "../purchase";

/**
 * Each store's published request limits, one entry per quota bucket (Google) or endpoint (Apple): what the upstream
 * limiter (limiter.ts) holds every isolate to. A store that joins the service adds its own entry here; the limiter,
 * the statistics and the configuration (`apps[].quotas.limits`, keyed "<store>.<bucket>") take it from there.
 *
 * Sources:
 * - Google Play Developer API: buckets with independent per-minute quotas, 3,000 queries a minute each by default
 *   (https://developers.google.com/android-publisher/quotas); Subscriptions (purchases.subscriptions and
 *   subscriptionsv2) and One-time Purchases (purchases.products) are separate buckets. Accounts can be granted more.
 * - App Store Server API: per app and endpoint, 50 requests a second in Production for Get Transaction Info, Get All
 *   Subscription Statuses and Get Notification History; Sandbox gets 10% of that
 *   (https://developer.apple.com/documentation/appstoreserverapi/identifying-rate-limits).
 * - Amazon's Receipt Verification Service: no published limit (see the entry).
 */

export interface BucketDefinition {
	/** At most this many calls in any `periodSeconds`, as the store publishes it. */
	limit: number;
	periodSeconds: number;
	/** The share of `limit` a Sandbox environment gets (Apple: 10%); 1 where the store has one environment. */
	sandboxShare: number;
	/** What calls it covers, for people reading statistics. */
	covers: string;
}

export const STORE_BUCKETS = {
	google_play: {
		subscriptions: { limit: 3000, periodSeconds: 60, sandboxShare: 1, covers: "purchases.subscriptionsv2.get, purchases.subscriptions.acknowledge" },
		one_time_purchases: { limit: 3000, periodSeconds: 60, sandboxShare: 1, covers: "purchases.products.get, :acknowledge, :consume" },
		// Not named in the excerpt of Google's bucket table we rely on: limited apart, at the default per-bucket quota.
		voided_purchases: { limit: 3000, periodSeconds: 60, sandboxShare: 1, covers: "purchases.voidedpurchases.list (the scheduled catch-up)" },
	},
	app_store: {
		transactions: { limit: 50, periodSeconds: 1, sandboxShare: 0.1, covers: "Get Transaction Info" },
		subscription_statuses: { limit: 50, periodSeconds: 1, sandboxShare: 0.1, covers: "Get All Subscription Statuses" },
		notification_history: { limit: 50, periodSeconds: 1, sandboxShare: 0.1, covers: "Get Notification History (the scheduled catch-up)" },
		// Apple publishes no limit for the deprecated verifyReceipt; held to the App Store Server API's so a flood cannot reach it.
		verify_receipt: { limit: 50, periodSeconds: 1, sandboxShare: 0.1, covers: "verifyReceipt (apps with only a shared secret)" },
	},
	amazon: {
		// Amazon publishes no limit for the Receipt Verification Service: held to the App Store Server API's, so that a
		// flood cannot reach it; an account that needs more configures it (apps[].quotas.limits["amazon.receipts"]).
		receipts: { limit: 50, periodSeconds: 1, sandboxShare: 1, covers: "RVS verifyReceiptId (production or the Cloud Sandbox)" },
	},
} as const satisfies Record<Store, Record<string, BucketDefinition>>;

export type BucketName<S extends Store = Store> = S extends Store ? keyof (typeof STORE_BUCKETS)[S] & string : never;

/** Where a store call is counted: one limiter per app, store, bucket and environment. */
export interface BucketRef {
	appId: string;
	store: Store;
	bucket: string;
	/** "Production" or "Sandbox" (Apple); Google has one environment, "Production". */
	environment: "Production" | "Sandbox";
}

/** "<store>.<bucket>": how configuration and statistics name a bucket. */
export function bucketKey(store: Store, bucket: string): string {
	return `${store}.${bucket}`;
}

/** Every "<store>.<bucket>" there is, for validating configuration. */
export function allBucketKeys(): string[] {
	return Object.entries(STORE_BUCKETS).flatMap(([store, buckets]) => Object.keys(buckets).map((bucket) => bucketKey(store as Store, bucket)));
}

export function definitionOf(store: Store, bucket: string): BucketDefinition | undefined {
	return (STORE_BUCKETS[store] as Record<string, BucketDefinition>)[bucket];
}
