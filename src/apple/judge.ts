import type { AppConfig } from "../config/schema";
import { Refusal } from "../answers";
import type { Environment, Purchase, PurchaseKind, PurchaseState } from "../purchase";
import { appAccountTokenForUser } from "./app-account-token";
import type { ReceiptTransaction, ReceiptRenewal } from "./receipt-client";
import type { AppleRenewalInfo, AppleTransaction } from "./signed-data";

/**
 * Turns what Apple vouched for (a verified signed transaction with its renewal info, or a verifyReceipt entry) into
 * the normalized Purchase, in whatever state Apple says it is: the ledger decides what that state grants. What a
 * caller claims is checked separately (checkClaim): the product, and the user where the app binds transactions
 * to users. Authenticity, bundle and environment were settled before this point.
 */

export interface AppleClaim {
	productId: string;
	userId: string;
}

const KINDS: Record<string, PurchaseKind> = {
	Consumable: "consumable",
	"Non-Consumable": "non_consumable",
	"Auto-Renewable Subscription": "subscription",
	"Non-Renewing Subscription": "subscription",
};

/** The facts a state is decided from, whichever form Apple stated them in. */
interface Facts {
	revoked: "refunded" | "revoked" | null;
	upgraded: boolean;
	autoRenewable: boolean;
	expiresAt: number | null;
	/** From renewal info, when Apple sent it. */
	renewal: { willRenew: boolean | null; inBillingRetry: boolean; graceExpiresAt: number | null } | undefined;
}

/**
 * A transaction's state now. Apple's own words first: a revocation (refund, or family sharing withdrawn) and an
 * upgrade are final. A subscription whose period has not ended is active, or canceled when its renewal is off;
 * once ended, it is in its grace period or billing retry while Apple still tries to collect, else expired.
 */
function stateOf(facts: Facts, now: number): { state: PurchaseState; graceExpiresAt: number | null; willRenew: boolean | null } {
	const willRenew = facts.renewal?.willRenew ?? null;
	if (facts.revoked) return { state: facts.revoked, graceExpiresAt: null, willRenew };
	if (facts.upgraded) return { state: "superseded", graceExpiresAt: null, willRenew };
	if (!facts.autoRenewable || facts.expiresAt === null) return { state: "active", graceExpiresAt: null, willRenew };
	if (facts.expiresAt > now) return { state: willRenew === false ? "canceled" : "active", graceExpiresAt: null, willRenew };
	const grace = facts.renewal?.graceExpiresAt ?? null;
	if (facts.renewal?.inBillingRetry) {
		return grace !== null && grace > now ? { state: "in_grace_period", graceExpiresAt: grace, willRenew } : { state: "on_hold", graceExpiresAt: null, willRenew };
	}
	return { state: "expired", graceExpiresAt: null, willRenew };
}

/** A verified signed transaction (and the subscription's renewal info, when Apple sent it) as a Purchase. */
export function purchaseFromTransaction(app: AppConfig, tx: AppleTransaction, renewal: AppleRenewalInfo | undefined, now: number): Purchase {
	// Xcode and LocalTesting data only get this far where allowLocalTesting is on; they are not real money.
	const environment: Environment = tx.environment === "Production" ? "Production" : "Sandbox";
	const kind = KINDS[tx.type ?? ""] ?? kindFromCatalogue(app, tx.productId, tx.expiresDate !== undefined);
	const autoRenewable = tx.type === "Auto-Renewable Subscription" || (tx.type === undefined && kind === "subscription" && tx.expiresDate !== undefined);
	const sameSubscription = renewal !== undefined && renewal.originalTransactionId === tx.originalTransactionId;
	const { state, graceExpiresAt, willRenew } = stateOf(
		{
			revoked: tx.revocationDate === undefined ? null : tx.revocationType === "FAMILY_REVOKE" ? "revoked" : "refunded",
			upgraded: tx.isUpgraded === true,
			autoRenewable,
			expiresAt: tx.expiresDate ?? null,
			renewal: sameSubscription
				? { willRenew: renewal.autoRenewStatus === undefined ? null : renewal.autoRenewStatus === 1, inBillingRetry: renewal.isInBillingRetryPeriod === true, graceExpiresAt: renewal.gracePeriodExpiresDate ?? null }
				: undefined,
		},
		now,
	);
	return {
		appId: app.id,
		store: "app_store",
		environment,
		transactionId: tx.transactionId,
		originalTransactionId: tx.originalTransactionId,
		subscriptionId: autoRenewable ? tx.originalTransactionId : null,
		linkedTransactionId: null,
		orderId: tx.webOrderLineItemId ?? null,
		productId: tx.productId,
		kind,
		purchasedAt: tx.purchaseDate,
		expiresAt: tx.expiresDate ?? null,
		graceExpiresAt,
		willRenew,
		state,
		quantity: tx.quantity ?? 1,
		price: tx.price ?? null,
		currency: tx.currency ?? null,
		needsAcknowledgement: false,
		// Offline data is Apple's word as of its signing; a transaction without signedDate is as of now.
		asOf: tx.signedDate ?? now,
		raw: tx,
	};
}

/** A verifyReceipt entry (and the subscription's pending renewal info, when Apple sent it) as a Purchase. */
export function purchaseFromReceipt(
	app: AppConfig,
	receipt: { environment: Environment; bundleId: string },
	tx: ReceiptTransaction,
	renewal: ReceiptRenewal | undefined,
	now: number,
): Purchase {
	// verifyReceipt does not say which kind a product is; only auto-renewable subscriptions carry an expiry.
	const kind = kindFromCatalogue(app, tx.productId, tx.expiresDateMs !== null);
	const autoRenewable = kind === "subscription" && tx.expiresDateMs !== null;
	const { state, graceExpiresAt, willRenew } = stateOf(
		{ revoked: tx.cancellationDateMs === null ? null : "refunded", upgraded: tx.isUpgraded, autoRenewable, expiresAt: tx.expiresDateMs, renewal },
		now,
	);
	return {
		appId: app.id,
		store: "app_store",
		environment: receipt.environment,
		transactionId: tx.transactionId,
		originalTransactionId: tx.originalTransactionId,
		subscriptionId: autoRenewable ? tx.originalTransactionId : null,
		linkedTransactionId: null,
		orderId: tx.webOrderLineItemId,
		productId: tx.productId,
		kind,
		purchasedAt: tx.purchaseDateMs,
		expiresAt: tx.expiresDateMs,
		graceExpiresAt,
		willRenew,
		state,
		quantity: tx.quantity,
		price: null,
		currency: null,
		needsAcknowledgement: false,
		// verifyReceipt answers with Apple's current view.
		asOf: now,
		raw: { environment: receipt.environment, bundleId: receipt.bundleId, transaction: tx.raw },
	};
}

/**
 * What the caller claims, against what Apple signed: the product, and, with appAccountTokenIsUserUuid, the user.
 * A transaction naming nobody is accepted: purchases made outside the app (offer codes, older app versions) carry
 * no token, and the ledger still gives each transaction to one user only.
 */
export async function checkClaim(app: AppConfig, claim: AppleClaim, tx: { productId: string; appAccountToken?: string | null | undefined }, raw: unknown): Promise<void> {
	if (tx.productId !== claim.productId) throw new Refusal("product_mismatch", `the transaction is for product ${tx.productId}, not ${claim.productId}`, raw);
	const token = tx.appAccountToken;
	if (!app.apple?.appAccountTokenIsUserUuid || token === undefined || token === null || token === "") return;
	if (token.toLowerCase() !== (await appAccountTokenForUser(claim.userId))) {
		throw new Refusal("user_mismatch", "the transaction's appAccountToken belongs to another user", raw);
	}
}

function kindFromCatalogue(app: AppConfig, productId: string, expires: boolean): PurchaseKind {
	return app.products[productId] ?? (expires ? "subscription" : "non_consumable");
}
