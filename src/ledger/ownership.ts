import { HistoryUnavailable, Misconfigured } from "../answers";
import type { Store } from "../purchase";
import { claimStub } from "./grant";
import { findPurchase } from "./history";
import { APPLY_MIGRATIONS } from "./schema";

/**
 * Support moves a purchase (a whole subscription) to a user, or takes it from everyone (toUserId null), through its
 * claim, audited with who did it (`actor`: an API key's id, a console user; never a key) and why. The API and the
 * console both act through this.
 */

export type MoveOutcome =
	| { status: "not_found"; message: string }
	| { status: "done"; store: Store; transactionId: string; claim: string; fromUserId: string | null; toUserId: string | null; action: "transfer" | "revoke" };

export async function movePurchase(env: Env, appId: string, actor: string, store: Store, transactionId: string, toUserId: string | null, reason: string): Promise<MoveOutcome> {
	const entry = await findPurchase(env.DB, store, transactionId);
	if (!entry || entry.appId !== appId) return { status: "not_found", message: "no such purchase in this app" };
	const claimId = entry.subscriptionId ?? entry.transactionId;
	const outcome = await claimStub(env, store, claimId).transfer(toUserId, actor, reason, transactionId);
	if (outcome.status === "unknown") return { status: "not_found", message: "this purchase has no claim yet: nothing to move" };
	if (outcome.history === "schema_missing") throw new Misconfigured(`the change is made, but D1 has no schema: ${APPLY_MIGRATIONS}`);
	if (outcome.history === "unavailable") throw new HistoryUnavailable("the change is made and will reach the history shortly; it is safe to repeat");
	return { status: "done", store, transactionId, claim: claimId, fromUserId: outcome.fromUserId, toUserId: outcome.toUserId, action: toUserId === null ? "revoke" : "transfer" };
}
