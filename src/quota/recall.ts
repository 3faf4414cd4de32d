import { UnknownToStore } from "../answers";
import type { Purchase } from "../purchase";

/**
 * What one isolate remembers so that the stores are asked less:
 * - a negative cache: evidence the store said does not exist (UnknownToStore), for NEGATIVE_TTL_MS, at most
 *   NEGATIVE_MAX entries (the oldest go first), so the same junk token posted in a loop costs one store call per
 *   isolate and lifetime, not one per request;
 * - single flight: concurrent verifications of the same evidence (an app retrying, two devices restoring at once)
 *   share one store call and its answer. Each caller still claims the purchase through its claim, one at a time,
 *   so who owns it is decided exactly as before.
 * Keys name the app, the store's lookup and everything else the verification depends on (src/verification.ts).
 */

const NEGATIVE_TTL_MS = 120_000;
const NEGATIVE_MAX = 5_000;

const negative = new Map<string, { refusal: UnknownToStore; until: number }>();
const inFlight = new Map<string, Promise<Purchase>>();

/** How a verification got its answer, for the logs and statistics. */
export type Recalled = "store" | "coalesced" | "negative_cache";

/**
 * The purchase the store states for `key`: `source` says how it will be had, known before waiting for it. The store is
 * asked (through `verify`) only if no one in this isolate is asking already and it has not just said the evidence
 * does not exist (unless the caller wants a `fresh` answer). `answer` rejects with what `verify` throws.
 */
export function recall(key: string, verify: () => Promise<Purchase>, options: { fresh?: boolean } = {}, now = Date.now()): { source: Recalled; answer: Promise<Purchase> } {
	const known = negative.get(key);
	if (known && known.until > now && !options.fresh) {
		const { code, message, raw } = known.refusal;
		return { source: "negative_cache", answer: Promise.reject(new UnknownToStore(code, message, raw)) };
	}
	if (known) negative.delete(key);
	const running = inFlight.get(key);
	if (running) return { source: "coalesced", answer: running };
	const call = verify()
		.catch((err: unknown) => {
			if (err instanceof UnknownToStore) remember(key, err, now);
			throw err;
		})
		.finally(() => inFlight.delete(key));
	inFlight.set(key, call);
	return { source: "store", answer: call };
}

function remember(key: string, refusal: UnknownToStore, now: number): void {
	negative.delete(key);
	negative.set(key, { refusal, until: now + NEGATIVE_TTL_MS });
	// A Map iterates in insertion order: the first keys are the oldest.
	while (negative.size > NEGATIVE_MAX) negative.delete(negative.keys().next().value!);
}
