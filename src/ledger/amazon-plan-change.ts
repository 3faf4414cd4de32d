import type { Purchase } from "../purchase";
import { findPurchase } from "./history";

/**
 * An Amazon subscription's identity. Amazon keeps one receipt for every renewal, so a subscription is its receipt,
 * except after an immediate plan change (a tiered subscription's upgrade or downgrade): Amazon then cancels the
 * receipt and issues a new one, which only the Real-time Notification links to the old
 * (relatedReceipts.cancelledReceiptId; https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-tiered-subs.html).
 * The notification records the new receipt under the old one's subscription (src/lifecycle/amazon.ts); from then on
 * the history says which subscription a receipt belongs to, so it belongs to whoever owns the old one.
 */
export async function withAmazonSubscription(db: D1Database, purchase: Purchase): Promise<Purchase> {
	if (purchase.store !== "amazon" || purchase.kind !== "subscription") return purchase;
	const known = await findPurchase(db, "amazon", purchase.transactionId);
	if (!known?.subscriptionId || known.subscriptionId === purchase.subscriptionId) return purchase;
	return { ...purchase, subscriptionId: known.subscriptionId, linkedTransactionId: known.linkedTransactionId };
}

/** A receipt a plan change issued, as part of the subscription of the receipt it replaced. */
export async function replacing(db: D1Database, purchase: Purchase, cancelledReceiptId: string): Promise<Purchase> {
	if (purchase.kind !== "subscription" || cancelledReceiptId === purchase.transactionId) return purchase;
	const replaced = await findPurchase(db, "amazon", cancelledReceiptId);
	return { ...purchase, subscriptionId: replaced?.subscriptionId ?? cancelledReceiptId, linkedTransactionId: cancelledReceiptId };
}
