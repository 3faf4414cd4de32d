import { Refusal } from "./answers";
import type { AppConfig, Config } from "./config/schema";
import { grantPurchase, type Grant } from "./ledger/grant";
import { grantFromLedger } from "./ledger/replay";
import { recall, type Recalled } from "./quota/recall";
import { noteSaved } from "./quota/saved";
import { bucketOfEvidence, presentedOf, recallKeyOf, verifyEvidence, type Evidence } from "./verification";

/**
 * Evidence → a grant for one user, asking the store only when the service cannot answer itself:
 *   1. a replay the ledger can answer under the app's freshness policy, or another user's presentation of an owned
 *      purchase, is answered by the purchase's claim (src/ledger/replay.ts): no store call;
 *   2. otherwise the store is asked, sharing the call with concurrent verifications of the same evidence and
 *      remembering a "does not exist" (src/quota/recall.ts), within the app's quota (src/quota/gate.ts);
 *   3. and the claim decides, exactly as for any verification (grantPurchase).
 * `fresh` skips 1 and 2's memory: the store is asked (concurrent callers still share the call).
 * Throws Refusal, StoreUnreachable and the rest as verifyEvidence and grantPurchase do; `trace.upstream` says how the
 * answer was had, for the logs.
 */

export type Upstream = Recalled | "state" | "none";

export async function grantEvidence(
	env: Env,
	app: AppConfig,
	config: Config,
	evidence: Evidence,
	userId: string,
	options: { restore: boolean; fresh?: boolean },
	trace: { upstream?: Upstream } = {},
): Promise<Grant> {
	const bucket = bucketOfEvidence(app, evidence);
	const presented = options.fresh ? undefined : presentedOf(app, evidence);
	if (presented) {
		try {
			const answered = await grantFromLedger(env, app, config, presented, userId, { restore: options.restore });
			if (answered) {
				trace.upstream = "state";
				if (bucket) noteSaved(bucket, "state");
				return answered;
			}
		} catch (err) {
			if (err instanceof Refusal) {
				trace.upstream = "state";
				if (bucket) noteSaved(bucket, "state");
			}
			throw err;
		}
	}
	const key = recallKeyOf(app, evidence);
	let purchase;
	if (key === undefined) {
		trace.upstream = bucket ? "store" : "none";
		purchase = await verifyEvidence(app, config, evidence);
	} else {
		const { source, answer } = recall(key, () => verifyEvidence(app, config, evidence), { fresh: options.fresh === true });
		trace.upstream = source;
		if (bucket && source !== "store") noteSaved(bucket, source);
		purchase = await answer;
	}
	return grantPurchase(env, app, config, purchase, userId, { restore: options.restore });
}
