/**
 * The calls the emulator received as a store, with the status each finally answered, so tests can count exactly
 * what reached "the store" (GET /_emulator/calls). In memory on purpose: a test double, fresh on every start.
 */

export interface CallRecord {
	at: number;
	/** e.g. "google.token", "google.products.get", "apple.transactions.get" */
	endpoint: string;
	/** What the call was about: the path, plus the service account for token requests. */
	subject: string;
	status: number;
}

export const calls: CallRecord[] = [];

/** Enough for bench:load's largest case (10,000 verifications, each with its store call) with room to spare. */
const MAX_CALLS = 100_000;

export function recordCall(endpoint: string, subject: string, status: number): void {
	calls.push({ at: Date.now(), endpoint, subject, status });
	// Bounded: a long dev session should not grow without limit.
	if (calls.length > MAX_CALLS) calls.splice(0, calls.length - MAX_CALLS);
}
