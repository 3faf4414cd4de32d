/**
 * The one fault registry: what tests told the emulator to get wrong, for the next matching calls. Each store
 * endpoint takes the kinds it can answer with: every endpoint the generic ones (an HTTP error, a slow answer,
 * garbage; see store-endpoint.ts), the App Store Server API Apple's coded errors, verifyReceipt its statuses
 * (see apple-errors.ts). Set through POST /_emulator/faults and POST /_emulator/apple/errors.
 */

export type Fault =
	/** Answer this HTTP status with an error body. */
	| { kind: "http_error"; status: number }
	/** Wait this long, then answer normally. */
	| { kind: "slow"; delayMs: number }
	/** Answer 200 with a body that is not JSON. */
	| { kind: "garbage" }
	/** App Store Server API: Apple's error body, HTTP status = the code's first three digits. */
	| { kind: "apple_error"; errorCode: number; retryAfterSeconds?: number }
	/** verifyReceipt: HTTP 200 with this status. */
	| { kind: "receipt_status"; status: number; isRetryable?: boolean };

export type FaultKind = Fault["kind"];

interface Registered {
	/** Applies to calls whose subject (see store-endpoint.ts) contains this string. */
	match: string;
	fault: Fault;
	/** How many more matching calls it affects; then it is gone. */
	remaining: number;
}

const registry: Registered[] = [];

export function addFault(match: string, fault: Fault, times = 1): void {
	registry.push({ match, fault, remaining: times });
}

/** The first registered fault of one of `kinds` whose match `subject` contains, used up by one call. */
export function takeFault<K extends FaultKind>(subject: string, kinds: readonly K[]): Extract<Fault, { kind: K }> | undefined {
	const index = registry.findIndex((f) => f.remaining > 0 && (kinds as readonly FaultKind[]).includes(f.fault.kind) && subject.includes(f.match));
	if (index < 0) return undefined;
	const found = registry[index]!;
	found.remaining -= 1;
	if (found.remaining <= 0) registry.splice(index, 1);
	return found.fault as Extract<Fault, { kind: K }>;
}
