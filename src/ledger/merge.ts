import type { Purchase, PurchaseState } from "../purchase";

/**
 * How what a store says now about a transaction combines with what its claim already holds. Stores do not always
 * speak in order (a notification retried for days, a signed transaction presented months after it was signed), so
 * the statement made later wins, whenever it arrives. A few states are final once reached, whatever a store says
 * after: a consumable we consumed, a purchase replaced by a later one of the same subscription, and a Google
 * purchase Google voided (Google has no way back from a refund; Apple says so itself, REFUND_REVERSED).
 */
export function mergeStatement(held: Purchase | undefined, said: Purchase): Purchase {
	if (!held) return said;
	if (said.asOf < held.asOf) return held;
	return { ...said, state: finalState(held, said.state) };
}

function finalState(held: Purchase, said: PurchaseState): PurchaseState {
	if (held.state === "consumed" && said === "active") return "consumed";
	if (held.state === "superseded") return "superseded";
	if (held.store === "google_play" && (held.state === "refunded" || held.state === "revoked")) return held.state;
	return said;
}

/** Whether two statements say the same thing, whenever each was made: a replay that needs no write. */
export function sameStatement(a: Purchase, b: Purchase): boolean {
	return canonical({ ...a, asOf: 0 }) === canonical({ ...b, asOf: 0 });
}

/** JSON with object keys in one order, so that two equal values read from different places compare equal. */
function canonical(value: unknown): string {
	return JSON.stringify(value, (_key, v: unknown) =>
		v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
	);
}

/** A statement that the store voided a transaction (a refund, a chargeback), known only by its id and time. */
export function voided(held: Purchase, state: "refunded" | "revoked", asOf: number): Purchase {
	if (asOf < held.asOf && held.store !== "google_play") return held;
	return { ...held, state, asOf: Math.max(asOf, held.asOf) };
}
