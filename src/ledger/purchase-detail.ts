import { currentState, isEntitled, type Store } from "../purchase";
import { auditOf } from "./audit";
import { eventsOf } from "./event-log";
import { claimStub } from "./grant";
import { findPurchase, type D1Reader, type HistoryEntry } from "./history";
import { timelineOf } from "./notifications";

/**
 * One purchase as support sees it, the same for the API (GET /v1/purchases/{store}/{id}) and the console: its history
 * row, owner, the claim's state, the store's last answer, the store notifications about it, the events it made here,
 * and its audit trail.
 */

/** A history row as the API shows it, with its state now and whether it gives access now. */
export function shown(entry: HistoryEntry, now = Date.now()) {
	return { ...entry, currentState: currentState(entry, now), entitled: isEntitled(entry, now) };
}

export async function purchaseDetail(env: Env, db: D1Reader, appId: string, store: Store, transactionId: string) {
	const entry = await findPurchase(db, store, transactionId);
	if (!entry || entry.appId !== appId) return null;
	const claimId = entry.subscriptionId ?? entry.transactionId;
	const [claim, timeline, events, audit] = await Promise.all([
		claimStub(env, store, claimId).record(),
		timelineOf(db, store, transactionId, entry.subscriptionId),
		eventsOf(db, store, claimId),
		auditOf(db, store, claimId),
	]);
	const held = claim?.transactions.find((t) => t.purchase.transactionId === transactionId);
	return {
		purchase: shown(entry),
		owner: entry.userId,
		claim: claim
			? {
					key: claim.key,
					ownerUserId: claim.userId,
					revoked: claim.revoked,
					firstSeenAt: claim.firstSeenAt,
					transactions: claim.transactions.length,
					acknowledgement: held?.ackState ?? null,
					acknowledgementAttempts: held?.ackAttempts ?? 0,
					consumption: held?.consumeState ?? null,
					historySynced: held?.historySynced ?? null,
				}
			: null,
		storeAnswer: (held?.purchase.raw ?? null) as unknown,
		timeline,
		events,
		audit,
	};
}

export type PurchaseDetail = NonNullable<Awaited<ReturnType<typeof purchaseDetail>>>;
