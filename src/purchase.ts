/**
 * The one normalized purchase model every store's verifier produces, the ledger stores and the API returns.
 */
export type Store = "google_play" | "app_store" | "amazon";
export type Environment = "Production" | "Sandbox";
export type PurchaseKind = "consumable" | "non_consumable" | "subscription";
export type PurchaseState =
	| "active"
	| "pending"
	| "canceled"
	| "expired"
	| "refunded"
	| "revoked"
	| "in_grace_period"
	| "on_hold"
	| "paused"
	| "consumed";

export interface Purchase {
	appId: string;
	store: Store;
	environment: Environment;
	/** The store's globally unique key: Google's purchase token, Apple's transactionId. */
	transactionId: string;
	/** Apple's originalTransactionId; Google's linkedPurchaseToken chain root when known. */
	originalTransactionId: string | null;
	orderId: string | null;
	productId: string;
	kind: PurchaseKind;
	/** Milliseconds since the epoch. */
	purchasedAt: number;
	expiresAt: number | null;
	state: PurchaseState;
	quantity: number;
	/** Whether the store still needs a server-side acknowledgement (Google) for this purchase to stick. */
	needsAcknowledgement: boolean;
	/** The store's own answer, as received (decoded JWS payload for Apple). */
	raw: unknown;
}

/** Why a purchase was refused. Stable strings: apps and dashboards match on them. */
export type RefusalCode =
	| "invalid_purchase"
	| "product_mismatch"
	| "app_mismatch"
	| "canceled"
	| "pending"
	| "expired"
	| "inactive"
	| "refunded"
	| "revoked"
	| "sandbox_not_accepted"
	| "environment_not_accepted"
	| "owned_by_another_user"
	| "invalid_signature"
	| "user_mismatch";

/** The store vouched that a transaction is now in a state that grants nothing (a refund seen on re-verification). */
export interface Lapse {
	store: Store;
	transactionId: string;
	state: PurchaseState;
}

export class Refusal extends Error {
	constructor(
		readonly code: RefusalCode,
		message: string,
		/** What the store said, when it said something, kept for the caller's `data`. */
		readonly raw?: unknown,
		/** Set only from what the store vouched for: the ledger records it so the history stays true. */
		readonly lapse?: Lapse,
	) {
		super(message);
		this.name = "Refusal";
	}
}

/**
 * The store could not be asked, or did not answer sensibly: an outage, a timeout, a 5xx, a 429, a shape we do
 * not understand. Never a "no": callers answer non-200 so the app retries.
 */
export class StoreUnreachable extends Error {
	constructor(
		readonly store: Store,
		message: string,
		readonly options: { retryAfterSeconds?: number; cause?: unknown } = {},
	) {
		super(message);
		this.name = "StoreUnreachable";
	}
}

/**
 * Whether a purchase gives access now. A canceled subscription keeps access until it expires (the user
 * turned renewal off); a canceled one-time purchase was voided and gives none.
 */
export function isEntitled(purchase: Pick<Purchase, "state" | "kind" | "expiresAt">, now = Date.now()): boolean {
	if (purchase.kind === "subscription") {
		const live = purchase.state === "active" || purchase.state === "in_grace_period" || purchase.state === "canceled";
		// Apple's non-renewing subscriptions carry no expiry: the app decides their term, so they count while active.
		return live && (purchase.expiresAt === null || purchase.expiresAt > now);
	}
	return purchase.state === "active" || purchase.state === "consumed";
}
