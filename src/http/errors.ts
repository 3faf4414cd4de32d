import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Store } from "../purchase";

/** The closed set of error codes this service answers with. Each maps to exactly one HTTP status. */
export type ErrorCode =
	| "invalid_request"
	| "unauthorized"
	| "not_found"
	| "method_not_allowed"
	| "payload_too_large"
	| "conflict"
	| "store_unreachable"
	| "history_unavailable"
	| "misconfigured"
	| "internal";

export function statusFor(code: ErrorCode): ContentfulStatusCode {
	switch (code) {
		case "invalid_request":
			return 400;
		case "unauthorized":
			return 401;
		case "not_found":
			return 404;
		case "method_not_allowed":
			return 405;
		case "payload_too_large":
			return 413;
		case "conflict":
			return 409;
		case "store_unreachable":
		case "history_unavailable":
		case "misconfigured":
			return 503;
		case "internal":
			return 500;
	}
}

/**
 * An error we raise on purpose. `message` and `field` go to the caller; `detail` only to the log.
 * `retryAfter` (seconds) becomes a Retry-After header.
 */
export class ApiError extends Error {
	constructor(
		readonly code: ErrorCode,
		message: string,
		readonly options: { field?: string; detail?: unknown; retryAfter?: number; extra?: Record<string, unknown> } = {},
	) {
		super(message);
		this.name = "ApiError";
	}

	get status(): ContentfulStatusCode {
		return statusFor(this.code);
	}
}

/** How long an app is told to wait when a store gave no answer and did not say when to come back. */
const DEFAULT_STORE_RETRY_SECONDS = 30;

/** The 503 for a store that could not give a verdict, however that was learnt. */
export function storeUnreachableError(
	store: Store,
	message: string,
	options: { retryAfterSeconds?: number; cause?: unknown; extra?: Record<string, unknown> } = {},
): ApiError {
	return new ApiError("store_unreachable", `${store} could not be reached: ${message}; retry later`, {
		retryAfter: options.retryAfterSeconds ?? DEFAULT_STORE_RETRY_SECONDS,
		detail: { store, cause: options.cause },
		...(options.extra ? { extra: options.extra } : {}),
	});
}

/** The one error shape on the wire. */
export interface ErrorBody {
	error: { code: ErrorCode; message: string; field?: string; request_id: string };
}

export function errorBody(code: ErrorCode, message: string, requestId: string, field?: string): ErrorBody {
	return { error: { code, message, ...(field ? { field } : {}), request_id: requestId } };
}
