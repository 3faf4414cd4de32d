import type { Store } from "../purchase";
import type { D1Reader } from "./history";
import { withSchema } from "./schema";

/**
 * The ownership_audit table (migrations/0003): every change of who owns a purchase, and every support action on it
 * (a re-verification with the store, and what the store said), with who did it and why.
 */

export type OwnershipAction = "claim" | "restore_transfer" | "transfer" | "revoke" | "reverify";

export interface AuditEntry {
	id: string;
	store: Store;
	/** The claim's key: the transaction id, or the subscription id of an auto-renewing subscription. */
	claimId: string;
	transactionId: string;
	appId: string;
	action: OwnershipAction;
	fromUserId: string | null;
	toUserId: string | null;
	/** "user" for a user's own claim or restore; "api-key:<app>:<n>" for a support action (the key's position, never the key). */
	actor: string;
	reason: string | null;
	/** A re-verification's result: "applied", "unchanged", "refused: <code>" or "not asked: <why>" (migrations/0006); absent otherwise. */
	outcome?: string | null;
	at: number;
}

export function auditWrite(db: Pick<D1Database, "prepare">, e: AuditEntry): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO ownership_audit (id, store, claim_id, transaction_id, app_id, action, from_user_id, to_user_id, actor, reason, outcome, at)
			 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING`,
		)
		.bind(e.id, e.store, e.claimId, e.transactionId, e.appId, e.action, e.fromUserId, e.toUserId, e.actor, e.reason, e.outcome ?? null, e.at);
}

/** A claim's ownership changes, oldest first. */
export async function auditOf(db: D1Reader, store: Store, claimId: string): Promise<Omit<AuditEntry, "store" | "claimId">[]> {
	const { results } = await withSchema(() =>
		db
			.prepare(
				`SELECT id, transaction_id, app_id, action, from_user_id, to_user_id, actor, reason, outcome, at FROM ownership_audit
				 WHERE store = ?1 AND claim_id = ?2 ORDER BY at, id LIMIT 500`,
			)
			.bind(store, claimId)
			.all<{ id: string; transaction_id: string; app_id: string; action: OwnershipAction; from_user_id: string | null; to_user_id: string | null; actor: string; reason: string | null; outcome: string | null; at: number }>(),
	);
	return results.map((r) => ({
		id: r.id,
		transactionId: r.transaction_id,
		appId: r.app_id,
		action: r.action,
		fromUserId: r.from_user_id,
		toUserId: r.to_user_id,
		actor: r.actor,
		reason: r.reason,
		outcome: r.outcome,
		at: r.at,
	}));
}
