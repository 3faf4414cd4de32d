import type { AppConfig } from "../config/schema";
import { type Environment, type Purchase, type PurchaseKind, type PurchaseState } from "../purchase";
import { Refusal, type Lapse } from "../answers";
import { appAccountTokenForUser } from "./app-account-token";
import type { ReceiptTransaction } from "./receipt-client";
import type { AppleTransaction } from "./signed-data";

/**
 * Turns what Apple vouched for (a verified signed transaction, or a verifyReceipt entry) into the normalized
 * Purchase, refusing what must not grant access: another product, another user, a refund, a lapsed subscription.
 * Authenticity, bundle and environment were settled before this point.
 */

export interface AppleClaim {
	productId: string;
	userId?: string;
}

const KINDS: Record<string, PurchaseKind> = {
	Consumable: "consumable",
	"Non-Consumable": "non_consumable",
	"Auto-Renewable Subscription": "subscription",
	"Non-Renewing Subscription": "subscription",
};

export async function purchaseFromTransaction(app: AppConfig, claim: AppleClaim, tx: AppleTransaction, now: number): Promise<Purchase> {
	const raw = tx;
	if (tx.productId !== claim.productId) throw new Refusal("product_mismatch", `the transaction is for product ${tx.productId}, not ${claim.productId}`, raw);
	await checkAccountToken(app, claim, tx.appAccountToken, raw);
	// Xcode and LocalTesting data only get this far where allowLocalTesting is on; they are not real money.
	const environment: Environment = tx.environment === "Production" ? "Production" : "Sandbox";
	const kind = KINDS[tx.type ?? ""] ?? kindFromCatalogue(app, tx.productId, tx.expiresDate !== undefined);
	if (tx.revocationDate !== undefined) {
		// FAMILY_REVOKE: the purchaser stopped sharing with this family member, no money moved. Anything else is a refund.
		if (tx.revocationType === "FAMILY_REVOKE") {
			throw new Refusal("revoked", "Apple revoked this transaction: it is no longer shared with this family member", raw, lapse(tx.transactionId, "revoked"));
		}
		throw new Refusal("refunded", "Apple refunded this transaction", raw, lapse(tx.transactionId, "refunded"));
	}
	const expiresAt = tx.expiresDate ?? null;
	if (kind === "subscription" && expiresAt !== null && expiresAt <= now) throw new Refusal("expired", "the subscription has expired", raw, lapse(tx.transactionId, "expired"));
	return {
		appId: app.id,
		store: "app_store",
		environment,
		transactionId: tx.transactionId,
		originalTransactionId: tx.originalTransactionId,
		orderId: tx.webOrderLineItemId ?? null,
		productId: tx.productId,
		kind,
		purchasedAt: tx.purchaseDate,
		expiresAt,
		state: "active",
		quantity: tx.quantity ?? 1,
		needsAcknowledgement: false,
		raw,
	};
}

export async function purchaseFromReceipt(
	app: AppConfig,
	claim: AppleClaim,
	receipt: { environment: Environment; bundleId: string },
	tx: ReceiptTransaction,
	now: number,
): Promise<Purchase> {
	const raw = { environment: receipt.environment, bundleId: receipt.bundleId, transaction: tx.raw };
	if (tx.productId !== claim.productId) throw new Refusal("product_mismatch", `the transaction is for product ${tx.productId}, not ${claim.productId}`, raw);
	await checkAccountToken(app, claim, tx.appAccountToken ?? undefined, raw);
	// verifyReceipt does not say which kind a product is; only subscriptions carry an expiry.
	const kind = kindFromCatalogue(app, tx.productId, tx.expiresDateMs !== null);
	if (tx.cancellationDateMs !== null) throw new Refusal("refunded", "Apple refunded this transaction", raw, lapse(tx.transactionId, "refunded"));
	if (kind === "subscription" && tx.expiresDateMs !== null && tx.expiresDateMs <= now) {
		throw new Refusal("expired", "the subscription has expired", raw, lapse(tx.transactionId, "expired"));
	}
	const state: PurchaseState = "active";
	return {
		appId: app.id,
		store: "app_store",
		environment: receipt.environment,
		transactionId: tx.transactionId,
		originalTransactionId: tx.originalTransactionId,
		orderId: tx.webOrderLineItemId,
		productId: tx.productId,
		kind,
		purchasedAt: tx.purchaseDateMs,
		expiresAt: tx.expiresDateMs,
		state,
		quantity: tx.quantity,
		needsAcknowledgement: false,
		raw,
	};
}

function lapse(transactionId: string, state: PurchaseState): Lapse {
	return { store: "app_store", transactionId, state };
}

function kindFromCatalogue(app: AppConfig, productId: string, expires: boolean): PurchaseKind {
	return app.products[productId] ?? (expires ? "subscription" : "non_consumable");
}

/**
 * With appAccountTokenIsUserUuid, a transaction that names a user (see app-account-token.ts) must name this one.
 * A transaction naming nobody is accepted: purchases made outside the app (offer codes, older app versions)
 * carry no token, and the ledger still gives each transaction to one user only.
 */
async function checkAccountToken(app: AppConfig, claim: AppleClaim, token: string | undefined, raw: unknown): Promise<void> {
	if (!app.apple?.appAccountTokenIsUserUuid || token === undefined || token === "") return;
	if (claim.userId === undefined) return;
	if (token.toLowerCase() !== (await appAccountTokenForUser(claim.userId))) {
		throw new Refusal("user_mismatch", "the transaction's appAccountToken belongs to another user", raw);
	}
}
