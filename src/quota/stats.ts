import type { AppConfig } from "../config/schema";
import type { Store } from "../purchase";
import { STORE_BUCKETS, type BucketDefinition, type BucketRef } from "./buckets";
import { limitFor, limiterStub } from "./gate";
import type { BucketCounts, BucketStats, LimitSpec } from "./limiter";

/**
 * What GET /v1/stats/upstream reports: for each quota bucket the app can spend, its limit, how much of it the last
 * minute used, and what the service saved by not calling (answered from the ledger, coalesced, negative cache).
 */

export interface BucketReport {
	store: Store;
	bucket: string;
	environment: BucketRef["environment"];
	covers: string;
	limit: LimitSpec;
	/** The last minute's calls as a share of what the limit allows in a minute (1 = at the limit). */
	lastMinuteUse: number;
	/** Calls made per verification in the last hour: calls ÷ (calls + calls saved). */
	lastHourCallsPerVerification: number | null;
	blockedUntil: number | null;
	nextTurnAt: number;
	lastMinute: BucketCounts;
	lastHour: BucketCounts;
	lastDay: BucketCounts;
}

/** The buckets an app can spend: those of the stores it is configured for, in the environments it accepts. */
export function bucketsOf(app: AppConfig): BucketRef[] {
	const environments: BucketRef["environment"][] = app.acceptSandbox ? ["Production", "Sandbox"] : ["Production"];
	const refs: BucketRef[] = [];
	if (app.google) for (const bucket of Object.keys(STORE_BUCKETS.google_play)) refs.push({ appId: app.id, store: "google_play", bucket, environment: "Production" });
	if (app.apple) {
		const buckets = Object.keys(STORE_BUCKETS.app_store).filter((b) => (b === "verify_receipt" ? app.apple!.sharedSecret !== undefined : app.apple!.api !== undefined));
		for (const bucket of buckets) for (const environment of environments) refs.push({ appId: app.id, store: "app_store", bucket, environment });
	}
	// One RVS endpoint: production, or the Cloud Sandbox when the app is configured for it.
	if (app.amazon) refs.push({ appId: app.id, store: "amazon", bucket: "receipts", environment: app.amazon.sandbox ? "Sandbox" : "Production" });
	return refs;
}

export async function upstreamReport(app: AppConfig): Promise<BucketReport[]> {
	return Promise.all(
		bucketsOf(app).map(async (ref) => {
			const stats: BucketStats = await limiterStub(ref).stats();
			const limit = limitFor(app.quotas, ref);
			const perMinute = (limit.limit * 60) / limit.periodSeconds;
			const hour = stats.lastHour;
			const asked = hour.calls + hour.savedState + hour.savedCoalesced + hour.savedNegativeCache;
			const definition = (STORE_BUCKETS[ref.store] as Record<string, BucketDefinition>)[ref.bucket]!;
			return {
				store: ref.store,
				bucket: ref.bucket,
				environment: ref.environment,
				covers: definition.covers,
				limit,
				lastMinuteUse: Math.round((stats.lastMinute.calls / perMinute) * 1000) / 1000,
				lastHourCallsPerVerification: asked === 0 ? null : Math.round((hour.calls / asked) * 1000) / 1000,
				blockedUntil: stats.blockedUntil,
				nextTurnAt: stats.nextTurnAt,
				lastMinute: stats.lastMinute,
				lastHour: stats.lastHour,
				lastDay: stats.lastDay,
			};
		}),
	);
}
