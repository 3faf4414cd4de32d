import { Refusal } from "../answers";
import type { AppConfig, Config } from "../config/schema";
import { withAmazonSubscription } from "../ledger/amazon-plan-change";
import { unitIdOf } from "../ledger/claim";
import { withGoogleSubscription } from "../ledger/google-chain";
import { claimStub } from "../ledger/grant";
import { auditWrite } from "../ledger/audit";
import { findPurchase, type HistoryEntry } from "../ledger/history";
import { withSchema } from "../ledger/schema";
import type { PurchaseState, Store } from "../purchase";
import { listEvidence, type Evidence } from "../verification";
import { applyStatement } from "./apply";

/**
 * Support asks the store about a purchase now, rather than waiting for a notification or the catch-up: Google by its
 * purchase token, Apple by its transaction id (App Store Server API credentials needed), Amazon by its receipt id and
 * the Amazon user id RVS last confirmed it for (held by the claim). What the store says is
 * applied like any statement (merged by the store's time, through the claim; owners never change), and the request
 * is audited with who asked, why, and what came of it. A store that no longer vouches for the purchase changes nothing
 * and says so, and that is audited too: the trail shows every time support asked.
 */

export type ReverifyOutcome =
	| { status: "not_found" }
	| { status: "applied" | "unchanged"; before: PurchaseState; after: PurchaseState }
	| { status: "refused"; before: PurchaseState; code: string; message: string }
	/** The store cannot be asked: what asking needs is not known here (Amazon: the customer's Amazon user id). */
	| { status: "cannot_ask"; message: string };

export async function reverifyPurchase(env: Env, app: AppConfig, config: Config, store: Store, transactionId: string, actor: string, reason: string): Promise<ReverifyOutcome> {
	const entry = await findPurchase(env.DB, store, transactionId);
	if (!entry || entry.appId !== app.id) return { status: "not_found" };
	let evidence: Evidence;
	switch (store) {
		case "google_play":
			evidence = { store, productId: entry.productId, purchaseToken: transactionId, typeHint: entry.kind === "subscription" ? "subscription" : "product" };
			break;
		case "app_store":
			evidence = { store, productId: entry.productId, userId: "", form: "transaction_id", transactionId };
			break;
		case "amazon": {
			const held = (await claimStub(env, store, unitIdOf(entry)).record())?.transactions.find((t) => t.purchase.transactionId === transactionId)?.purchase;
			if (held?.storeUserId === undefined) {
				await auditUnanswered(env, entry, actor, reason, "not asked: the Amazon user id is not known");
				return { status: "cannot_ask", message: "RVS needs the customer's Amazon user id, which this service has not recorded for this receipt: verify it again through the app" };
			}
			evidence = { store, productId: entry.productId, receiptId: transactionId, amazonUserId: held.storeUserId };
			break;
		}
	}
	const refused = async (code: string, message: string): Promise<ReverifyOutcome> => {
		await auditUnanswered(env, entry, actor, reason, `refused: ${code}`);
		return { status: "refused", before: entry.state, code, message };
	};
	let said;
	try {
		const found = (await listEvidence(app, config, evidence)).find((p) => p.transactionId === transactionId);
		if (!found) return await refused("invalid_purchase", "the store's answer does not hold this transaction");
		said = store === "google_play" ? await withGoogleSubscription(env, app, config, found) : store === "amazon" ? await withAmazonSubscription(env.DB, found) : found;
	} catch (err) {
		if (err instanceof Refusal) return refused(err.code, err.message);
		throw err;
	}
	const outcome = await applyStatement(env, store, unitIdOf(said), { kind: "purchase", purchase: said }, undefined, { actor, reason });
	const after = (await findPurchase(env.DB, store, transactionId))?.state ?? entry.state;
	return { status: outcome.status === "applied" ? "applied" : "unchanged", before: entry.state, after };
}

/** A re-verification that brought no statement to apply changes nothing, so no claim writes it: it goes to D1 here. */
async function auditUnanswered(env: Env, entry: HistoryEntry, actor: string, reason: string, outcome: string): Promise<void> {
	const row = {
		id: crypto.randomUUID(),
		store: entry.store,
		claimId: unitIdOf(entry),
		transactionId: entry.transactionId,
		appId: entry.appId,
		action: "reverify" as const,
		fromUserId: entry.userId,
		toUserId: entry.userId,
		actor,
		reason,
		outcome,
		at: Date.now(),
	};
	await withSchema(() => auditWrite(env.DB, row).run());
}
