import type { AppConfig } from "./config/schema";
import { currentState, isEntitled, type AccessFields, type Environment, type PurchaseKind, type PurchaseState, type Store } from "./purchase";

/**
 * "Does this user have access now?": what an app's entitlements are worth, from the user's purchases as the history
 * holds them. isEntitled (src/purchase.ts) decides each purchase; this picks, for each entitlement, the purchase
 * that grants it longest (a lifetime purchase outlasts any subscription), and says why when none does.
 */

/** The fields of a history row this needs. */
export interface Owned extends AccessFields {
	store: Store;
	transactionId: string;
	productId: string;
	kind: PurchaseKind;
	environment: Environment;
	orderId: string | null;
	purchasedAt: number;
	expiresAt: number | null;
	willRenew: boolean | null;
}

/** An entitlement's state, in the words apps show users. */
export type EntitlementState = "active" | "in_grace_period" | "canceled_but_running" | PurchaseState | "never_purchased";

export interface Entitlement {
	id: string;
	active: boolean;
	state: EntitlementState;
	/** Null while active for good (a lifetime purchase), or with no purchase. */
	expiresAt: number | null;
	productId: string | null;
	store: Store | null;
	environment: Environment | null;
	willRenew: boolean | null;
	/** The purchase that grants it (the one lasting longest), or, when none does, the latest that did. */
	purchase: { store: Store; transactionId: string; orderId: string | null; productId: string; purchasedAt: number; expiresAt: number | null; state: PurchaseState } | null;
}

/** How long a purchase grants access: forever for a one-time purchase, to its expiry (or grace end) for a subscription. */
function grantsUntil(p: Owned): number {
	if (p.kind !== "subscription" || p.expiresAt === null) return Number.POSITIVE_INFINITY;
	return Math.max(p.expiresAt, p.graceExpiresAt ?? 0);
}

function describe(id: string, purchases: readonly Owned[], now: number): Entitlement {
	const granting = purchases.filter((p) => isEntitled(p, now));
	const best = granting.length > 0 ? granting.reduce((a, b) => (grantsUntil(b) > grantsUntil(a) ? b : a)) : undefined;
	const shown = best ?? purchases.reduce<Owned | undefined>((a, b) => (a === undefined || b.purchasedAt > a.purchasedAt ? b : a), undefined);
	if (!shown) {
		return { id, active: false, state: "never_purchased", expiresAt: null, productId: null, store: null, environment: null, willRenew: null, purchase: null };
	}
	const state = currentState(shown, now);
	const until = grantsUntil(shown);
	return {
		id,
		active: best !== undefined,
		state: state === "canceled" && best ? "canceled_but_running" : state,
		expiresAt: Number.isFinite(until) ? until : null,
		productId: shown.productId,
		store: shown.store,
		environment: shown.environment,
		willRenew: shown.willRenew,
		purchase: {
			store: shown.store,
			transactionId: shown.transactionId,
			orderId: shown.orderId,
			productId: shown.productId,
			purchasedAt: shown.purchasedAt,
			expiresAt: shown.expiresAt,
			state,
		},
	};
}

/**
 * Every entitlement of the app for a user who owns `purchases`. Consumables never grant entitlements; Sandbox
 * purchases count only for an app that accepts them.
 */
export function entitlementsOf(app: AppConfig, purchases: readonly Owned[], now = Date.now()): Entitlement[] {
	const counted = purchases.filter((p) => p.kind !== "consumable" && (p.environment === "Production" || app.acceptSandbox));
	return Object.entries(app.entitlements).map(([id, products]) =>
		describe(
			id,
			counted.filter((p) => products.includes(p.productId)),
			now,
		),
	);
}

/** The products an id names: an entitlement's, or the product itself. */
export function productsFor(app: AppConfig, id: string): { entitlement: string | null; products: string[] } {
	const products = app.entitlements[id];
	return products ? { entitlement: id, products } : { entitlement: null, products: [id] };
}

/** Access to one entitlement or product: the per-request gate a backend asks. */
export function accessTo(app: AppConfig, id: string, purchases: readonly Owned[], now = Date.now()) {
	const { entitlement, products } = productsFor(app, id);
	const described = entitlementsOf({ ...app, entitlements: { [id]: products } }, purchases, now)[0]!;
	return {
		access: described.active,
		expiresAt: described.active ? described.expiresAt : null,
		reason: described.state,
		entitlement,
		productId: described.productId,
	};
}
