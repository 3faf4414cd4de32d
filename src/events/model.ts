import type { Entitlement } from "../entitlements";
import type { Purchase, Store } from "../purchase";

/**
 * What happened to a purchase, for the world outside: webhooks (through a Cloudflare Queue) and the live socket of
 * the user it belongs to. Type names are stable: receivers match on them.
 */
export const EVENT_TYPES = [
	"purchase.granted",
	"purchase.restored",
	"purchase.refunded",
	"purchase.revoked",
	"purchase.consumed",
	"subscription.renewed",
	"subscription.canceled",
	"subscription.uncanceled",
	"subscription.in_grace_period",
	"subscription.on_hold",
	"subscription.paused",
	"subscription.expired",
	"subscription.product_changed",
	"ownership.transferred",
	"ownership.refused",
	"entitlement.granted",
	"entitlement.lost",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A purchase as events carry it: as the history holds it, without the store's raw answer. */
export type PurchaseView = Omit<Purchase, "raw"> & { userId: string | null };

export interface ServiceEvent {
	/** Unique per event; webhooks send it as `webhook-id`, so a receiver can drop a redelivery. */
	id: string;
	type: EventType;
	/** When the change was made here (ms). */
	at: number;
	appId: string;
	/** Whose purchase it is after the change (null while nobody owns it, or after a revocation). */
	userId: string | null;
	store: Store;
	/** The claim the purchase belongs to, and the claim's own count of events: later events have higher ones. */
	claim: string;
	sequence: number;
	purchase: PurchaseView;
	/** ownership.*: who had it, who has it, who presented it, why. */
	ownership?: { fromUserId: string | null; toUserId: string | null; presentedBy?: string; action: string; reason?: string | null };
	/** entitlement.*: the entitlement as it stands after the change. */
	entitlement?: Entitlement;
}

export function viewOf(purchase: Purchase, userId: string | null): PurchaseView {
	const { raw: _raw, ...rest } = purchase;
	return { ...rest, userId };
}

/** Whether a webhook endpoint's filter (`purchase.*`, `subscription.renewed`, `*`) takes an event type. */
export function matchesFilter(filters: readonly string[], type: EventType): boolean {
	return filters.some((f) => f === "*" || f === type || (f.endsWith(".*") && type.startsWith(f.slice(0, -1))));
}
