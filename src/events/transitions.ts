import { currentState, type Purchase, type PurchaseState } from "../purchase";
import type { EventType } from "./model";

/**
 * The events a change to a transaction makes, from what was last reported of it (its observed state, renewal
 * intent, expiry, product) to what the claim holds now. Pure: the claim calls it in the same step as the change,
 * so the events are stored with the change they report (src/ledger/claim.ts).
 */

/** What was last reported of a transaction. */
export interface Observed {
	state: PurchaseState;
	willRenew: boolean | null;
	expiresAt: number | null;
	productId: string;
}

export function observe(purchase: Purchase, now: number): Observed {
	return { state: currentState(purchase, now), willRenew: purchase.willRenew, expiresAt: purchase.expiresAt, productId: purchase.productId };
}

const ENTERED: Partial<Record<PurchaseState, EventType>> = {
	refunded: "purchase.refunded",
	revoked: "purchase.revoked",
	consumed: "purchase.consumed",
	expired: "subscription.expired",
	in_grace_period: "subscription.in_grace_period",
	on_hold: "subscription.on_hold",
	paused: "subscription.paused",
};

/** States a subscription comes back from by being paid for again. */
const LAPSED: ReadonlySet<PurchaseState> = new Set(["expired", "on_hold", "in_grace_period", "paused"]);

/**
 * Events for one transaction. `before` is undefined for a transaction the claim did not hold; `latestBefore` is the
 * subscription's latest transaction before it arrived (a renewal or a plan change), if any.
 */
export function transitions(before: Observed | undefined, after: Observed, kind: Purchase["kind"], latestBefore?: Observed): EventType[] {
	const events: EventType[] = [];
	if (!before) {
		if (kind === "subscription" && latestBefore && (after.expiresAt ?? 0) > (latestBefore.expiresAt ?? 0)) {
			events.push("subscription.renewed");
			if (after.productId !== latestBefore.productId) events.push("subscription.product_changed");
		}
		const entered = ENTERED[after.state];
		if (entered && after.state !== "expired") events.push(entered);
		return events;
	}
	if (after.state !== before.state) {
		const entered = ENTERED[after.state];
		if (entered) events.push(entered);
		else if ((after.state === "active" || after.state === "canceled") && LAPSED.has(before.state)) events.push("subscription.renewed");
	} else if (kind === "subscription" && after.expiresAt !== null && before.expiresAt !== null && after.expiresAt > before.expiresAt && (after.state === "active" || after.state === "canceled")) {
		// The same transaction running longer: a Google renewal (one token for every period).
		events.push("subscription.renewed");
	}
	if (before.willRenew === true && after.willRenew === false) events.push("subscription.canceled");
	if (before.willRenew === false && after.willRenew === true) events.push("subscription.uncanceled");
	if (after.productId !== before.productId) events.push("subscription.product_changed");
	return events;
}
