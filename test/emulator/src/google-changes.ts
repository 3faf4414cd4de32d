import type { GoogleEvent } from "./google-notifications";
import { statesFor, type GooglePurchase, type UpdateGooglePurchase } from "./google-purchases";
import { addVoided } from "./google-voided";

/**
 * What happens to a Google Play purchase when the admin API changes it, and the RTDN Google sends for it
 * (https://developer.android.com/google/play/billing/rtdn-reference):
 *   subscriptions: state canceled → SUBSCRIPTION_CANCELED (3), expired → SUBSCRIPTION_EXPIRED (13), on_hold →
 *     SUBSCRIPTION_ON_HOLD (5), in_grace_period → SUBSCRIPTION_IN_GRACE_PERIOD (6), paused → SUBSCRIPTION_PAUSED (10);
 *     active again: from on_hold or in_grace_period → SUBSCRIPTION_RECOVERED (1), from canceled →
 *     SUBSCRIPTION_RESTARTED (7), from pending → SUBSCRIPTION_PURCHASED (4), from paused or expired →
 *     SUBSCRIPTION_RENEWED (2); the expiry moved later while active → SUBSCRIPTION_RENEWED (2).
 *   one-time products: canceled → ONE_TIME_PRODUCT_CANCELED (2), purchased (from pending) → ONE_TIME_PRODUCT_PURCHASED (1).
 *   refund: true → voided: a product's purchaseState becomes 1 (canceled), a subscription expires now; it joins
 *     voidedpurchases.list and a voidedPurchaseNotification (full refund) is sent.
 */

const ENTERED: Record<string, number> = { canceled: 3, expired: 13, on_hold: 5, in_grace_period: 6, paused: 10 };
const ACTIVE_AGAIN: Record<string, number> = { on_hold: 1, in_grace_period: 1, canceled: 7, pending: 4, paused: 2, expired: 2 };

export type GoogleUpdateResult = { events: GoogleEvent[] } | { refused: { field: string; message: string } };

/** Applies an update, all of it or (when refused) none of it, and returns the notifications due. */
export function applyGoogleUpdate(p: GooglePurchase, patch: UpdateGooglePurchase, now = Date.now()): GoogleUpdateResult {
	if (patch.state !== undefined && !statesFor(p.type).includes(patch.state)) {
		return { refused: { field: "state", message: `must be one of ${statesFor(p.type).join(", ")} for a ${p.type}` } };
	}
	if (patch.refund && patch.state !== undefined) return { refused: { field: "refund", message: "a refund sets the state itself: send state or refund, not both" } };
	if (patch.refund && p.voided) return { refused: { field: "refund", message: "the purchase is already voided" } };
	for (const field of ["voidedSource", "voidedReason"] as const) {
		if (patch[field] !== undefined && !patch.refund) return { refused: { field, message: "goes with refund: true" } };
	}

	const before = { state: p.state, expiryTime: p.expiryTime };
	if (patch.state !== undefined) p.state = patch.state;
	if (patch.expiresInSeconds !== undefined) p.expiryTime = now + patch.expiresInSeconds * 1000;
	if (patch.acknowledged !== undefined) p.acknowledged = patch.acknowledged;

	if (patch.refund) {
		if (p.type === "product") {
			p.state = "canceled";
		} else {
			p.state = "expired";
			p.expiryTime = now;
		}
		p.voided = true;
		addVoided(p, patch.voidedSource ?? 0, patch.voidedReason ?? 1, now);
		return { events: [{ kind: "voided", purchase: p, refundType: 1 }] };
	}

	const events: GoogleEvent[] = [];
	const changed = p.state !== before.state;
	if (p.type === "subscription") {
		const type = !changed
			? undefined
			: p.state === "active"
				? ACTIVE_AGAIN[before.state]
				: ENTERED[p.state];
		if (type !== undefined) events.push({ kind: "subscription", purchase: p, notificationType: type });
		else if (!changed && p.state === "active" && (p.expiryTime ?? 0) > (before.expiryTime ?? 0)) {
			events.push({ kind: "subscription", purchase: p, notificationType: 2 });
		}
	} else if (changed && (p.state === "canceled" || p.state === "purchased")) {
		events.push({ kind: "one_time", purchase: p, notificationType: p.state === "canceled" ? 2 : 1 });
	}
	return { events };
}

/** The notification for a purchase the admin API creates (with `"notify": true`). */
export function creationEvent(p: GooglePurchase): GoogleEvent {
	return p.type === "subscription" ? { kind: "subscription", purchase: p, notificationType: 4 } : { kind: "one_time", purchase: p, notificationType: 1 };
}
