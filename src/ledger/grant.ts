import { type Purchase } from "../purchase";
import { HistoryUnavailable, Misconfigured, Refusal } from "../answers";
import { APPLY_MIGRATIONS } from "./schema";
import { claimKey } from "./claim";
import { setPurchaseState } from "./history";
import type { Logger } from "../log";

/**
 * Turns a verified purchase into a grant for one user, through the transaction's claim. Throws Refusal when
 * the purchase belongs to someone else, and ApiError(history_unavailable) when the claim holds but D1 could
 * not record it yet: the caller must then answer "retry", never "no" (the claim will repair D1).
 */

export interface Grant {
	purchase: Purchase;
	seenBefore: boolean;
	firstSeenAt: number;
}

export function claimStub(env: Env, store: string, transactionId: string) {
	return env.CLAIMS.get(env.CLAIMS.idFromName(claimKey(store, transactionId)));
}

export async function grantPurchase(env: Env, purchase: Purchase, userId: string): Promise<Grant> {
	const outcome = await claimStub(env, purchase.store, purchase.transactionId).claim(purchase, userId);
	switch (outcome.status) {
		case "owned_by_another_user":
			throw new Refusal("owned_by_another_user", "this purchase was already claimed by another user");
		case "product_mismatch":
			throw new Refusal("product_mismatch", `this transaction was claimed for product ${outcome.claimedProductId}`);
		case "granted":
			if (outcome.history === "schema_missing") throw new Misconfigured(`the purchase is valid and reserved for this user, but D1 has no schema: ${APPLY_MIGRATIONS}`);
			if (outcome.history === "unavailable") throw new HistoryUnavailable("the purchase is valid and reserved for this user, but could not be recorded yet; retry");
			return { purchase, seenBefore: outcome.seenBefore, firstSeenAt: outcome.firstSeenAt };
	}
}

/**
 * Records what a refusal says the store vouched for (a refund, a revocation, an expiry) on the transaction's
 * history row, if it has one, so the history does not keep saying "active". Best effort: the refusal stands
 * either way, and the stores' notifications are the main way the history is kept true.
 */
export async function recordLapse(env: Env, refusal: Refusal, log: Logger): Promise<void> {
	if (!refusal.lapse) return;
	const { store, transactionId, state } = refusal.lapse;
	try {
		await setPurchaseState(env.DB, store, transactionId, state);
	} catch (err) {
		log.warn("lapse_not_recorded", { store, state, error: err });
	}
}
