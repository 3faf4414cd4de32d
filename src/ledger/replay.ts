import { Refusal } from "../answers";
import type { AppConfig, Config } from "../config/schema";
import { createLogger } from "../log";
import type { Store } from "../purchase";
import { unitIdOf, type ReplayRequest } from "./claim";
import { claimStub, historyProblem, type Grant } from "./grant";
import { findPurchase } from "./history";

/**
 * Replays answered from the ledger: evidence of a transaction the service already holds is answered by its claim
 * (TransactionClaim.replay) from what the stores last said, when the app's freshness policy allows, with no store
 * call. The claim is found without asking anyone: a transaction's claim never changes once it has one, so it is
 * remembered per isolate, and otherwise looked up in the history. Evidence nobody here has seen goes to the store.
 */

/** The transaction evidence names, as far as it can be told without a store call. */
export interface Presented {
	store: Store;
	transactionId: string;
	productId: string;
	kind?: "one_time" | "subscription";
	/** The store account the evidence names, where the store checks it (Amazon's user id). */
	storeUserId?: string;
}

const UNITS_MAX = 20_000;
/** transaction → the id of its claim (a subscription's, or its own). */
const units = new Map<string, string>();

/** How long a store answer may be trusted for this app and store: src/config/schema.ts FreshnessSchema, README "Store quotas". */
export function freshnessFor(app: AppConfig, config: Config, store: Store): ReplayRequest["maxAgeMs"] {
	const notified = app.freshness.notifications[store] ?? notifiedByDefault(app, config, store);
	const ages = notified ? app.freshness.withNotifications : app.freshness.withoutNotifications;
	return { oneTime: ages.oneTimeSeconds * 1000, subscription: ages.subscriptionSeconds * 1000 };
}

/** Whether the store's notifications reach the service for this app, as far as the configuration tells. */
function notifiedByDefault(app: AppConfig, config: Config, store: Store): boolean {
	switch (store) {
		case "google_play":
			return (app.google?.push ?? config.notifications.googlePush) !== undefined;
		case "app_store":
			// App Store Connect holds the notification URL, not this configuration.
			return false;
		case "amazon":
			return app.amazon?.packageName !== undefined;
	}
}

/**
 * The grant (or the refusal, thrown) the ledger can give for this evidence on its own; undefined when only the store
 * can answer. Never a "no" that the store could contradict: the refusals are another owner, a support revocation,
 * and a Google refund.
 */
export async function grantFromLedger(env: Env, app: AppConfig, config: Config, presented: Presented, userId: string, options: { restore: boolean }): Promise<Grant | undefined> {
	const unitId = await unitOf(env, presented);
	if (unitId === undefined) return undefined;
	const outcome = await claimStub(env, presented.store, unitId).replay(presented.transactionId, {
		appId: app.id,
		userId,
		productId: presented.productId,
		...(presented.kind ? { kind: presented.kind } : {}),
		...(presented.storeUserId === undefined ? {} : { storeUserId: presented.storeUserId }),
		restore: options.restore,
		transferOnRestore: app.ownership === "transfer_on_restore",
		acceptSandbox: app.acceptSandbox,
		maxAgeMs: freshnessFor(app, config, presented.store),
	});
	switch (outcome.status) {
		case "ask_store":
			return undefined;
		case "owned_by_another_user":
			throw new Refusal("owned_by_another_user", "this purchase was already claimed by another user");
		case "refused":
			throw new Refusal(outcome.code, `the purchase is ${outcome.purchase.state}`, outcome.purchase.raw, { purchase: outcome.purchase, seenBefore: outcome.seenBefore });
		case "granted":
			if (outcome.history !== "recorded") throw historyProblem(outcome.history);
			return { purchase: outcome.purchase, seenBefore: true, firstSeenAt: outcome.firstSeenAt, transferredFrom: null, bookmark: outcome.bookmark };
	}
}

/** The claim of a transaction this service holds, or undefined for one it has not seen (or cannot look up now). */
async function unitOf(env: Env, presented: Presented): Promise<string | undefined> {
	const key = `${presented.store}:${presented.transactionId}`;
	const known = units.get(key);
	if (known !== undefined) return known;
	let entry;
	try {
		entry = await findPurchase(env.DB, presented.store, presented.transactionId);
	} catch (err) {
		// The store can still answer: a history outage costs a store call, never a verdict.
		createLogger(`replay:${presented.store}`).warn("replay_lookup_failed", { error: err });
		return undefined;
	}
	if (!entry) return undefined;
	const unitId = unitIdOf(entry);
	units.set(key, unitId);
	while (units.size > UNITS_MAX) units.delete(units.keys().next().value!);
	return unitId;
}
