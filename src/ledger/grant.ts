import { HistoryUnavailable, Misconfigured, Refusal } from "../answers";
import type { AppConfig, Config } from "../config/schema";
import type { Purchase } from "../purchase";
import { claimKey, unitIdOf, type TransactionClaim } from "./claim";
import { withAmazonSubscription } from "./amazon-plan-change";
import { withGoogleSubscription } from "./google-chain";
import { APPLY_MIGRATIONS } from "./schema";

/**
 * Turns a verified purchase into a grant for one user, through its claim. Throws Refusal when the purchase belongs
 * to someone else or grants nothing in the state the store (or an earlier notification) says it is in;
 * HistoryUnavailable when the claim holds but D1 could not record it yet: the caller must then answer "retry",
 * never "no" (the claim repairs D1 on its own).
 */

export interface Grant {
	purchase: Purchase;
	seenBefore: boolean;
	firstSeenAt: number;
	/** With transfer_on_restore: whom a restore took the purchase from. */
	transferredFrom: string | null;
	/** D1's bookmark of the write, for the caller's next read. */
	bookmark: string | null;
}

/**
 * The claim's RPC methods with the class's own types. RPC carries a purchase's `raw` (the store's JSON) as it is,
 * but TypeScript cannot prove `unknown` serializable and would drop those results from the stub's types.
 */
export type ClaimApi = Pick<TransactionClaim, "claim" | "replay" | "apply" | "record" | "consume" | "ping" | "transfer">;

/** The claim object of a store's transaction or subscription. */
export function claimStub(env: Env, store: string, unitId: string): ClaimApi {
	return env.CLAIMS.get(env.CLAIMS.idFromName(claimKey(store, unitId))) as unknown as ClaimApi;
}

/** The claim a purchase belongs to. */
export function claimOf(env: Env, purchase: Purchase): ClaimApi {
	return claimStub(env, purchase.store, unitIdOf(purchase));
}

export async function grantPurchase(env: Env, app: AppConfig, config: Config, verified: Purchase, userId: string, options: { restore?: boolean } = {}): Promise<Grant> {
	const purchase = await withAmazonSubscription(env.DB, await withGoogleSubscription(env, app, config, verified));
	const transferOnRestore = options.restore === true && app.ownership === "transfer_on_restore";
	const outcome = await claimOf(env, purchase).claim(purchase, userId, { restore: options.restore === true, transferOnRestore });
	switch (outcome.status) {
		case "owned_by_another_user":
			throw new Refusal("owned_by_another_user", "this purchase was already claimed by another user");
		case "product_mismatch":
			throw new Refusal("product_mismatch", `this transaction was claimed for product ${outcome.claimedProductId}`);
		case "refused":
			throw new Refusal(outcome.code, refusalReason(outcome.code, outcome.purchase, verified), outcome.purchase.raw, {
				purchase: outcome.purchase,
				seenBefore: outcome.seenBefore,
			});
		case "undecided":
			throw historyProblem(outcome.history);
		case "granted":
			if (outcome.history !== "recorded") throw historyProblem(outcome.history);
			return { purchase: outcome.purchase, seenBefore: outcome.seenBefore, firstSeenAt: outcome.firstSeenAt, transferredFrom: outcome.transferredFrom ?? null, bookmark: outcome.bookmark };
	}
}

export function historyProblem(history: "unavailable" | "schema_missing"): Error {
	return history === "schema_missing"
		? new Misconfigured(`the purchase is valid, but D1 has no schema: ${APPLY_MIGRATIONS}`)
		: new HistoryUnavailable("the purchase is valid and reserved for this user, but could not be recorded yet; retry");
}

/** Why the claim refused: what the store says of the purchase now, or that support took it away. */
function refusalReason(code: string, held: Purchase, presented: Purchase): string {
	if (code === "revoked" && held.state !== "revoked") return "support revoked this purchase: it belongs to nobody until support transfers it";
	return `the purchase is ${held.state}${held.asOf > presented.asOf ? " (as the store has said since)" : ""}`;
}
