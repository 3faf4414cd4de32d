import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HistoryUnavailable, InvalidEvidence, InvalidNotification, Misconfigured, NotConfigured, StoreUnreachable, type EvidencePart } from "../answers";
import type { Store } from "../purchase";

/** The closed set of error codes this service answers with. Each maps to exactly one HTTP status. */
export const ERROR_CODES = [
	"invalid_request",
	"unauthorized",
	"forbidden",
	"not_found",
	"method_not_allowed",
	"payload_too_large",
	"conflict",
	"rate_limited",
	"store_unreachable",
	"history_unavailable",
	"misconfigured",
	"internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export function statusFor(code: ErrorCode): ContentfulStatusCode {
	switch (code) {
		case "invalid_request":
			return 400;
		case "unauthorized":
			return 401;
		case "forbidden":
			return 403;
		case "not_found":
			return 404;
		case "method_not_allowed":
			return 405;
		case "payload_too_large":
			return 413;
		case "conflict":
			return 409;
		case "rate_limited":
			return 429;
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

/** How long an operator is given to fix a misconfiguration before the app asks again. */
const MISCONFIGURED_RETRY_SECONDS = 60;
/** The claim repairs D1 within seconds on its own. */
const HISTORY_RETRY_SECONDS = 5;

/**
 * The one mapping from the domain's answers (src/answers.ts) to the wire. Refusals are verdicts and never pass
 * through here: the routes answer them 200. Anything unknown stays as it is, for onError's last tier.
 */
export function toApiError(err: unknown, extra?: Record<string, unknown>): unknown {
	if (err instanceof ApiError) return err;
	if (err instanceof StoreUnreachable) return storeUnreachableError(err.store, err.message, { ...err.options, ...(extra ? { extra } : {}) });
	if (err instanceof NotConfigured) return new ApiError("invalid_request", `${err.part}: ${err.message}`, { field: err.part });
	if (err instanceof Misconfigured) return new ApiError("misconfigured", err.message, { detail: err.detail, retryAfter: MISCONFIGURED_RETRY_SECONDS });
	if (err instanceof HistoryUnavailable) return new ApiError("history_unavailable", err.message, { retryAfter: HISTORY_RETRY_SECONDS });
	if (err instanceof InvalidNotification) return new ApiError(err.reason === "unauthenticated" ? "unauthorized" : "invalid_request", err.message);
	if (err instanceof InvalidEvidence) return new ApiError("invalid_request", `${err.part}: ${err.message}`, { field: err.part });
	return err;
}

/**
 * Runs a verification whose evidence came from the request fields named in `fields`, so that evidence a store
 * refused to read is reported against the field the caller actually sent.
 */
export async function withEvidenceFields<T>(fields: Record<EvidencePart | "store", string>, verify: () => Promise<T>): Promise<T> {
	try {
		return await verify();
	} catch (err) {
		if (err instanceof InvalidEvidence || err instanceof NotConfigured) {
			const field = fields[err.part];
			throw new ApiError("invalid_request", `${field}: ${err.message}`, { field });
		}
		throw err;
	}
}

/** The one error shape on the wire. */
export interface ErrorBody {
	error: { code: ErrorCode; message: string; field?: string; request_id: string };
}

export function errorBody(code: ErrorCode, message: string, requestId: string, field?: string): ErrorBody {
	return { error: { code, message, ...(field ? { field } : {}), request_id: requestId } };
}
