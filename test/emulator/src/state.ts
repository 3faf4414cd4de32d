/**
 * The emulator's memory: purchases it knows, tokens it issued, the calls it received and the faults it was
 * told to inject. In-memory on purpose: it is a test double, fresh on every start.
 */

export interface CallRecord {
	at: number;
	/** e.g. "google.token", "google.products.get", "google.products.acknowledge" */
	endpoint: string;
	/** What the call was about: the path, plus the service account for token requests. */
	subject: string;
	status: number;
}

export type FaultMode = "error" | "slow" | "garbage";

export interface Fault {
	/** Applies to calls whose subject contains this string. */
	match: string;
	mode: FaultMode;
	/** For "error": the HTTP status to answer (default 500). */
	status: number;
	/** For "slow": how long to wait before answering normally. */
	delayMs: number;
	/** How many matching calls it affects; then it is gone. */
	remaining: number;
}

export const calls: CallRecord[] = [];
export const faults: Fault[] = [];

export function recordCall(endpoint: string, subject: string, status: number): void {
	calls.push({ at: Date.now(), endpoint, subject, status });
	// Bounded: a long dev session should not grow without limit.
	if (calls.length > 10_000) calls.splice(0, calls.length - 10_000);
}

/** The first fault matching `subject`, consumed by one use. */
export function takeFault(subject: string): Fault | undefined {
	const index = faults.findIndex((f) => f.remaining > 0 && subject.includes(f.match));
	if (index < 0) return undefined;
	const fault = faults[index]!;
	fault.remaining -= 1;
	if (fault.remaining <= 0) faults.splice(index, 1);
	return fault;
}

export function randomDigits(n: number): string {
	const bytes = crypto.getRandomValues(new Uint8Array(n));
	return Array.from(bytes, (b) => String(b % 10)).join("");
}

export function randomToken(bytes: number): string {
	const raw = crypto.getRandomValues(new Uint8Array(bytes));
	return btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}
