import type { Context } from "hono";

/**
 * Apple's own error answers, on request. The shared faults (faults.ts) cover what any store does (a 5xx, a
 * slow answer, garbage); these are the App Store's coded errors — 4290000 with its Retry-After, the retryable
 * 404s — and verifyReceipt's statuses, which need Apple's bodies to be told apart.
 */

export interface AppleFault {
	/** Applies to calls whose subject (path, plus the receipt's transaction ids for verifyReceipt) contains this. */
	match: string;
	/** App Store Server API: answered with HTTP status = its first three digits and Apple's error body. */
	errorCode?: number;
	/** verifyReceipt: answered as HTTP 200 with this status. */
	receiptStatus?: number;
	isRetryable?: boolean;
	/** Sent as Retry-After, the way Apple writes it: a UNIX time in milliseconds. */
	retryAfterSeconds?: number;
	remaining: number;
}

export const appleFaults: AppleFault[] = [];

const MESSAGES: Record<number, string> = {
	4000006: "Invalid transaction id.",
	4040002: "Account not found. Please try again.",
	4040004: "App not found. Please try again.",
	4040006: "Original transaction id not found. Please try again.",
	4040010: "Transaction id not found.",
	4290000: "Rate limit exceeded.",
	5000000: "An unknown error occurred.",
	5000001: "An unknown error occurred. Please try again.",
};

/** Apple's error body, with HTTP status = the code's first three digits. */
export function appleError(c: Context, errorCode: number, headers: Record<string, string> = {}) {
	const status = Math.floor(errorCode / 10_000);
	return c.json({ errorCode, errorMessage: MESSAGES[errorCode] ?? "Testing error." }, status as 400, headers);
}

function take(subject: string, kind: "errorCode" | "receiptStatus"): AppleFault | undefined {
	const index = appleFaults.findIndex((f) => f.remaining > 0 && f[kind] !== undefined && subject.includes(f.match));
	if (index < 0) return undefined;
	const fault = appleFaults[index]!;
	fault.remaining -= 1;
	if (fault.remaining <= 0) appleFaults.splice(index, 1);
	return fault;
}

/** An injected App Store Server API error for this call, answered; or undefined to answer normally. */
export function injectedApiError(c: Context, subject: string): Response | undefined {
	const fault = take(subject, "errorCode");
	if (!fault) return undefined;
	const retryAt = fault.retryAfterSeconds ?? (fault.errorCode === 4290000 ? 60 : undefined);
	return appleError(c, fault.errorCode!, retryAt === undefined ? {} : { "retry-after": String(Date.now() + retryAt * 1000) });
}

/** An injected verifyReceipt status for this call, answered; or undefined to answer normally. */
export function injectedReceiptStatus(c: Context, subject: string): Response | undefined {
	const fault = take(subject, "receiptStatus");
	if (!fault) return undefined;
	return c.json({ status: fault.receiptStatus, ...(fault.isRetryable === undefined ? {} : { "is-retryable": fault.isRetryable }) });
}
