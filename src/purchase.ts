/**
 * The one normalized purchase model every store's verifier produces, the ledger stores and the API returns, and
 * the one function that decides whether a purchase gives access.
 */
export const STORES = ["google_play", "app_store", "amazon"] as const;
export type Store = (typeof STORES)[number];
export type Environment = "Production" | "Sandbox";
export type PurchaseKind = "consumable" | "non_consumable" | "subscription";
export type PurchaseState =
	| "active"
	| "pending"
	/** Subscriptions: renewal turned off, running until expiresAt. One-time purchases: voided by the store. */
	| "canceled"
	| "expired"
	| "refunded"
	| "revoked"
	/** Renewal failed; access continues until graceExpiresAt while the store retries the payment. */
	| "in_grace_period"
	/** Renewal failed and no grace is left (Google's account hold, Apple's billing retry): no access. */
	| "on_hold"
	| "paused"
	| "consumed"
	/** Replaced by a later purchase of the same subscription (an upgrade, a plan change): grants nothing itself. */
	| "superseded";

export interface Purchase {
	appId: string;
	store: Store;
	environment: Environment;
	/** The store's globally unique key: Google's purchase token, Apple's transactionId, Amazon's receiptId. */
	transactionId: string;
	/** Apple's originalTransactionId; null for Google. */
	originalTransactionId: string | null;
	/**
	 * The auto-renewing subscription this transaction belongs to: Apple's originalTransactionId, the first purchase
	 * token of Google's linkedPurchaseToken chain (resolved by the ledger), or Amazon's receiptId (one receipt for every
	 * renewal; after a plan change, the receipt it replaced). Null for one-time purchases and non-renewing
	 * subscriptions. A subscription is owned as a whole: its claim is keyed by this.
	 */
	subscriptionId: string | null;
	/**
	 * The earlier purchase this one replaces: Google's linkedPurchaseToken (an upgrade, a downgrade, a resubscribe), the
	 * receipt an Amazon plan change cancelled (relatedReceipts.cancelledReceiptId).
	 */
	linkedTransactionId: string | null;
	orderId: string | null;
	productId: string;
	kind: PurchaseKind;
	/** Milliseconds since the epoch. */
	purchasedAt: number;
	expiresAt: number | null;
	/** While in_grace_period: when the grace ends. */
	graceExpiresAt: number | null;
	/** Whether the subscription renews at expiresAt, where the store says. */
	willRenew: boolean | null;
	state: PurchaseState;
	quantity: number;
	/** Where the store states it: the price in milli-units of `currency` (ISO 4217), as Apple writes prices. */
	price: number | null;
	currency: string | null;
	/** Whether the store still needs a server-side acknowledgement (Google) for this purchase to stick. */
	needsAcknowledgement: boolean;
	/**
	 * When the store said this, in ms: Apple's signedDate, or when Google answered. A later statement about the same
	 * transaction wins; an earlier one arriving late never moves the purchase back.
	 */
	asOf: number;
	/** The store's own answer, as received (decoded JWS payload for Apple). */
	raw: unknown;
	/**
	 * The store account the store confirmed this for, where the evidence must name one (Amazon's user id, which RVS
	 * checks the receipt against). A replay naming another account is asked of the store, never answered from here.
	 */
	storeUserId?: string;
}

/** The fields access depends on; history rows and purchases both have them. */
export type AccessFields = Pick<Purchase, "state" | "kind" | "expiresAt" | "graceExpiresAt">;

/**
 * The state a purchase is in now. A stored state was true when the store said it; time may have moved a
 * subscription on since (past its expiry, or past its grace), which needs no store to tell.
 */
export function currentState(purchase: AccessFields, now = Date.now()): PurchaseState {
	const { state, expiresAt, graceExpiresAt } = purchase;
	if (purchase.kind !== "subscription") return state;
	if ((state === "active" || state === "canceled") && expiresAt !== null && expiresAt <= now) return "expired";
	if (state === "in_grace_period" && (graceExpiresAt ?? expiresAt ?? Number.POSITIVE_INFINITY) <= now) return "on_hold";
	return state;
}

/**
 * Whether a purchase gives access now: an active one-time purchase, or a subscription that is active, in its
 * grace period, or canceled but still running (the user turned renewal off). A consumed consumable has been
 * delivered and gives no more.
 */
export function isEntitled(purchase: AccessFields, now = Date.now()): boolean {
	const state = currentState(purchase, now);
	if (purchase.kind === "subscription") return state === "active" || state === "canceled" || state === "in_grace_period";
	return state === "active";
}
