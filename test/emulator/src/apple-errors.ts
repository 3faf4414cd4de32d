import type { Context } from "hono";
import { takeFault } from "./faults";

/**
 * Apple's own error answers: the App Store Server API's coded errors (4290000 with its Retry-After, the retryable
 * 404s) and verifyReceipt's statuses, which need Apple's bodies to be told apart. Injected ones come from the
 * fault registry (faults.ts), aimed by a match on the call's subject.
 */

const MESSAGES: Record<number, string> = {
	4000006: "Invalid transaction id.",
	4000012: "Invalid request. The start date is earlier than the allowed start date.",
	4000013: "Invalid request. The end date precedes the start date or the dates are the same.",
	4000014: "Invalid request. The pagination token is invalid.",
	4000015: "Invalid request. The start date is not a timestamp value in milliseconds.",
	4000016: "Invalid request. The end date is not a timestamp value in milliseconds.",
	4000018: "Invalid request. The notification type or subtype is invalid.",
	4000019: "Invalid request. The request has too many filters: use transactionId or notificationType, not both.",
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

/** An injected App Store Server API error for this call, answered; or undefined to answer normally. */
export function injectedApiError(c: Context, subject: string): Response | undefined {
	const fault = takeFault(subject, ["apple_error"]);
	if (!fault) return undefined;
	const retryAt = fault.retryAfterSeconds ?? (fault.errorCode === 4290000 ? 60 : undefined);
	// Apple writes Retry-After as a UNIX time in milliseconds.
	return appleError(c, fault.errorCode, retryAt === undefined ? {} : { "retry-after": String(Date.now() + retryAt * 1000) });
}

/** An injected verifyReceipt status for this call, answered; or undefined to answer normally. */
export function injectedReceiptStatus(c: Context, subject: string): Response | undefined {
	const fault = takeFault(subject, ["receipt_status"]);
	if (!fault) return undefined;
	return c.json({ status: fault.status, ...(fault.isRetryable === undefined ? {} : { "is-retryable": fault.isRetryable }) });
}
