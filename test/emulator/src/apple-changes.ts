import type { AppleNotificationKind } from "./apple-notifications";
import { appleTransactions, applyRevocation, type AppleTransactionRecord, type CreateAppleTransaction, type UpdateAppleTransaction } from "./apple-transactions";

/**
 * What happens to an App Store transaction when the admin API changes it, and the notification Apple sends for each
 * change (https://developer.apple.com/documentation/appstoreservernotifications/notificationtype):
 *   revoked true / REFUND_FULL / REFUND_PRORATED → REFUND; FAMILY_REVOKE → REVOKE; false after either → REFUND_REVERSED
 *   autoRenew changed                           → DID_CHANGE_RENEWAL_STATUS (AUTO_RENEW_ENABLED | AUTO_RENEW_DISABLED)
 *   billingRetry {gracePeriodSeconds?}          → DID_FAIL_TO_RENEW (GRACE_PERIOD with a grace period); the period has
 *                                                 ended, so an expiry still ahead moves to now
 *   billingRetry false, while in billing retry  → EXPIRED (BILLING_RETRY): Apple stopped trying
 *   expiresInSeconds ≤ 0                        → EXPIRED (VOLUNTARY with auto-renew off, else BILLING_RETRY)
 *   expiresInSeconds > 0                        → RENEWAL_EXTENDED
 * A recovery from billing retry is a renewal: POST /transactions with renewalOf (DID_RENEW, BILLING_RECOVERY).
 */

const AUTO_RENEWABLE = "Auto-Renewable Subscription";

export type AppleUpdateResult = { changes: AppleNotificationKind[] } | { refused: { field: string; message: string } };

/** Applies an update, all of it or (when refused) none of it, and returns the notifications due, in order. */
export function applyAppleUpdate(t: AppleTransactionRecord, patch: UpdateAppleTransaction, now = Date.now()): AppleUpdateResult {
	if (t.type !== AUTO_RENEWABLE) {
		for (const field of ["expiresInSeconds", "autoRenew", "billingRetry"] as const) {
			if (patch[field] !== undefined) return { refused: { field, message: field === "expiresInSeconds" ? "only auto-renewable subscriptions expire" : "only auto-renewable subscriptions renew" } };
		}
	}
	const changes: AppleNotificationKind[] = [];

	if (patch.revoked !== undefined) {
		const wasRevoked = t.revocationDate !== null;
		applyRevocation(t, patch.revoked);
		if (patch.revoked === false) {
			if (wasRevoked) changes.push({ type: "REFUND_REVERSED" });
		} else {
			changes.push({ type: patch.revoked === "FAMILY_REVOKE" ? "REVOKE" : "REFUND" });
		}
	}

	if (patch.autoRenew !== undefined && patch.autoRenew !== t.autoRenew) {
		t.autoRenew = patch.autoRenew;
		changes.push({ type: "DID_CHANGE_RENEWAL_STATUS", subtype: patch.autoRenew ? "AUTO_RENEW_ENABLED" : "AUTO_RENEW_DISABLED" });
	}

	if (patch.billingRetry === false) {
		if (t.isInBillingRetry) {
			t.isInBillingRetry = false;
			t.gracePeriodExpiresDate = null;
			changes.push({ type: "EXPIRED", subtype: "BILLING_RETRY" });
		}
	} else if (patch.billingRetry !== undefined) {
		const grace = patch.billingRetry.gracePeriodSeconds;
		t.isInBillingRetry = true;
		t.gracePeriodExpiresDate = grace === undefined ? null : now + grace * 1000;
		// A renewal fails when the period ends: the period is over now.
		if (patch.expiresInSeconds === undefined && (t.expiresDate ?? 0) > now) t.expiresDate = now;
		changes.push({ type: "DID_FAIL_TO_RENEW", ...(grace === undefined ? {} : { subtype: "GRACE_PERIOD" }) });
	}

	if (patch.expiresInSeconds !== undefined) {
		t.expiresDate = now + patch.expiresInSeconds * 1000;
		if (patch.expiresInSeconds > 0) {
			changes.push({ type: "RENEWAL_EXTENDED" });
		} else if (patch.billingRetry === undefined) {
			// Expired: the customer turned renewal off, or Apple's billing retry ran out.
			t.isInBillingRetry = false;
			t.gracePeriodExpiresDate = null;
			changes.push({ type: "EXPIRED", subtype: t.autoRenew === false ? "VOLUNTARY" : "BILLING_RETRY" });
		}
	}

	if (patch.appAccountToken !== undefined) t.appAccountToken = patch.appAccountToken;
	return { changes };
}

/** The notification for a purchase the admin API creates, decided before it is created (a renewal ends a billing retry). */
export function creationChange(input: CreateAppleTransaction): AppleNotificationKind {
	const renewed = input.renewalOf === undefined ? undefined : appleTransactions.get(input.renewalOf);
	if (renewed) return { type: "DID_RENEW", ...(renewed.isInBillingRetry ? { subtype: "BILLING_RECOVERY" } : {}) };
	if ((input.type ?? "Non-Consumable") === AUTO_RENEWABLE) return { type: "SUBSCRIBED", subtype: "INITIAL_BUY" };
	return { type: "ONE_TIME_CHARGE" };
}
