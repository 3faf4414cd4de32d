/**
 * The one normalized purchase model every store's verifier produces, the ledger stores and the API returns.
 */
export type Store = "google_play" | "app_store";
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
