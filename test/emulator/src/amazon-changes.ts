import { TERM_MS, type AmazonReceipt, type UpdateAmazonReceipt } from "./amazon-receipts";

/**
 * What happens to an Amazon receipt when the admin API changes it, and the Real-time Notification Amazon sends for it
 * (https://developer.amazon.com/docs/in-app-purchasing/real-time-notifications.html):
 *   cancel (the order cancelled; cancelReason 1) or refund (by customer service; 2): a one-time purchase gets a
 *     cancelDate → CONSUMABLE_CANCELLED / ENTITLEMENT_CANCELLED; a subscription ends now → SUBSCRIPTION_CANCELLED.
 *   autoRenew false: renewalDate null, cancelDate the date it would have renewed → SUBSCRIPTION_AUTO_RENEWAL_OFF;
 *     true again before then → SUBSCRIPTION_AUTO_RENEWAL_ON.
 *   renew (expiresInSeconds): renewalDate moves on a term → SUBSCRIPTION_RENEWED, or, in a grace period,
 *     SUBSCRIPTION_OUT_OF_GRACE_PERIOD (the payment went through).
 *   gracePeriod {seconds}: the renewal is due and unpaid, gracePeriodEndDate set → SUBSCRIPTION_IN_GRACE_PERIOD;
 *     false → SUBSCRIPTION_OUT_OF_GRACE_PERIOD (paid, next term).
 *   expire: it ends now → SUBSCRIPTION_EXPIRED.
 *   gone: RVS answers 410 from now on; Amazon sends nothing.
 * A plan change (a receipt created with `replaces`) cancels the old receipt with cancelReason 4 →
 * SUBSCRIPTION_MODIFIED_IMMEDIATE, naming it in relatedReceipts.cancelledReceiptId.
 */

export interface AmazonEvent {
	receipt: AmazonReceipt;
	notificationType: string;
	relatedReceipts?: Record<string, string>;
}

export type AmazonUpdateResult = { events: AmazonEvent[] } | { refused: { field: string; message: string } };

const ACTIONS = ["cancel", "refund", "autoRenew", "renew", "gracePeriod", "expire", "gone"] as const;

export function applyAmazonUpdate(r: AmazonReceipt, patch: UpdateAmazonReceipt, now = Date.now()): AmazonUpdateResult {
	// expiresInSeconds alone is a renewal to that date.
	const renewing = patch.renew !== undefined || patch.expiresInSeconds !== undefined;
	const asked = ACTIONS.filter((action) => (action === "renew" ? renewing : patch[action] !== undefined));
	if (asked.length !== 1) return refuse(asked[1] ?? "cancel", `send exactly one change: ${ACTIONS.join(", ")} (renew may say expiresInSeconds)`);
	const subscription = r.productType === "SUBSCRIPTION";
	const ended = r.cancelDate !== null && r.cancelDate <= now;
	const event = (notificationType: string): AmazonUpdateResult => ({ events: [{ receipt: r, notificationType }] });

	if (patch.gone) {
		r.gone = true;
		return { events: [] };
	}
	if (patch.cancel || patch.refund) {
		const field = patch.cancel ? "cancel" : "refund";
		if (r.cancelDate !== null && (!subscription || ended)) return refuse(field, "the receipt is already cancelled");
		end(r, now, patch.cancel ? 1 : 2);
		return event(subscription ? "SUBSCRIPTION_CANCELLED" : r.productType === "CONSUMABLE" ? "CONSUMABLE_CANCELLED" : "ENTITLEMENT_CANCELLED");
	}
	const field = asked[0]!;
	if (!subscription) return refuse(field, "only subscriptions renew, lapse or change renewal");
	if (ended) return refuse(field, "the subscription has ended: a new subscription is a new receipt");
	if (patch.autoRenew === false) {
		if (!r.autoRenewing) return { events: [] };
		[r.cancelDate, r.cancelReason, r.renewalDate, r.autoRenewing] = [r.renewalDate ?? now + TERM_MS, 1, null, false];
		return event("SUBSCRIPTION_AUTO_RENEWAL_OFF");
	}
	if (patch.autoRenew === true) {
		if (r.autoRenewing) return { events: [] };
		[r.renewalDate, r.cancelDate, r.cancelReason, r.autoRenewing] = [r.cancelDate, null, null, true];
		return event("SUBSCRIPTION_AUTO_RENEWAL_ON");
	}
	if (renewing) {
		if (!r.autoRenewing) return refuse("renew", "renewal is off: turn autoRenew on first");
		const wasInGrace = r.gracePeriodEndDate !== null;
		r.renewalDate = patch.expiresInSeconds !== undefined ? now + patch.expiresInSeconds * 1000 : Math.max(r.renewalDate ?? now, now) + TERM_MS;
		r.gracePeriodEndDate = null;
		return event(wasInGrace ? "SUBSCRIPTION_OUT_OF_GRACE_PERIOD" : "SUBSCRIPTION_RENEWED");
	}
	if (patch.gracePeriod !== undefined) {
		if (patch.gracePeriod === false) {
			if (r.gracePeriodEndDate === null) return refuse("gracePeriod", "the subscription is not in a grace period");
			[r.renewalDate, r.gracePeriodEndDate] = [now + TERM_MS, null];
			return event("SUBSCRIPTION_OUT_OF_GRACE_PERIOD");
		}
		if (!r.autoRenewing) return refuse("gracePeriod", "renewal is off: nothing to retry");
		[r.renewalDate, r.gracePeriodEndDate] = [now, now + patch.gracePeriod.seconds * 1000];
		return event("SUBSCRIPTION_IN_GRACE_PERIOD");
	}
	// expire
	end(r, now, r.cancelReason ?? 2);
	return event("SUBSCRIPTION_EXPIRED");
}

/** The receipt ends now: no renewal, no grace. */
function end(r: AmazonReceipt, now: number, reason: number): void {
	[r.cancelDate, r.cancelReason, r.renewalDate, r.gracePeriodEndDate, r.autoRenewing] = [now, reason, null, null, false];
}

/** An immediate plan change: the old receipt is cancelled as replaced (cancelReason 4), the new one names it. */
export function replaceReceipt(old: AmazonReceipt, replacement: AmazonReceipt, now = Date.now()): AmazonEvent {
	end(old, now, 4);
	return { receipt: replacement, notificationType: "SUBSCRIPTION_MODIFIED_IMMEDIATE", relatedReceipts: { cancelledReceiptId: old.receiptId } };
}

/** The notification for a receipt the admin API creates (with `"notify"`). */
export function purchaseEvent(r: AmazonReceipt): AmazonEvent {
	const type = r.productType === "SUBSCRIPTION" ? "SUBSCRIPTION_PURCHASED" : r.productType === "CONSUMABLE" ? "CONSUMABLE_PURCHASED" : "ENTITLEMENT_PURCHASED";
	return { receipt: r, notificationType: type };
}

function refuse(field: string, message: string): AmazonUpdateResult {
	return { refused: { field, message } };
}
