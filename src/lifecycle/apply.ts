import { HistoryUnavailable, Misconfigured } from "../answers";
import type { Store } from "../purchase";
import type { ApplyOutcome, Statement } from "../ledger/claim";
import { claimStub } from "../ledger/grant";
import { APPLY_MIGRATIONS } from "../ledger/schema";

/**
 * The one way a store's statement that did not come from a user reaches the ledger: a notification pushed to us,
 * one the catch-up fetched, a void the catch-up found. The statement goes through the claim it belongs to, which
 * deduplicates by notification id, merges by the store's time and writes D1; only once D1 has it does this
 * return, so the caller may tell the store it was received.
 */
export async function applyStatement(env: Env, store: Store, unitId: string, statement: Statement, notificationId?: string, audited?: { actor: string; reason: string }): Promise<ApplyOutcome> {
	const outcome = await claimStub(env, store, unitId).apply(statement, notificationId === undefined ? undefined : `${store}:${notificationId}`, audited);
	if (outcome.history === "schema_missing") throw new Misconfigured(`a store notification could not be recorded: D1 has no schema: ${APPLY_MIGRATIONS}`);
	if (outcome.history === "unavailable") throw new HistoryUnavailable("the notification could not be recorded yet; the store will deliver it again");
	return outcome;
}

/** What a notification's statement did, as the notification routes answer it. */
export function appliedStatus(outcome: ApplyOutcome): "applied" | "unchanged" | "duplicate" {
	return outcome.status === "duplicate" ? "duplicate" : outcome.status === "applied" ? "applied" : "unchanged";
}
