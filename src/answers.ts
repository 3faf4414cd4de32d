/**
 * The domain's answers other than "granted": what store, ledger and verification code throw. None of them knows
 * HTTP; src/http/app.ts maps each to the wire once. A wrapper app retries on anything but a 200, so only a
 * Refusal may ever become a "no".
 */
import type { Purchase, Store } from "./purchase";

/** Why a purchase was refused. Stable strings: apps and dashboards match on them. */
export const REFUSAL_CODES = [
	"invalid_purchase",
	"product_mismatch",
	"app_mismatch",
	"canceled",
	"pending",
	"expired",
	"inactive",
	"refunded",
	"revoked",
	"sandbox_not_accepted",
	"environment_not_accepted",
	"owned_by_another_user",
	"invalid_signature",
	"user_mismatch",
	/** Replaced by a later purchase of the same subscription (an upgrade, a plan change): present that one. */
	"superseded",
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** A verdict: this evidence does not grant access, for a stated reason. Answered 200 with `code`. */
export class Refusal extends Error {
	constructor(
		readonly code: RefusalCode,
		message: string,
		/** What the store said, when it said something, kept for the caller's `data`. */
		readonly raw?: unknown,
		/** For a purchase the store vouched for that grants nothing now: the purchase as the ledger holds it. */
		readonly held?: { purchase: Purchase; seenBefore: boolean },
	) {
		super(message);
		this.name = "Refusal";
	}
}

/**
 * The store said the token or transaction id it was asked about does not exist (for this app, product or purchase
 * type). A refusal like any other; the service remembers it for a short while (src/quota/recall.ts) so that the same
 * junk costs one store call, not one per request.
 */
export class UnknownToStore extends Refusal {
	constructor(code: RefusalCode, message: string, raw?: unknown) {
		super(code, message, raw);
		this.name = "UnknownToStore";
	}
}

/**
 * The store could not be asked, or did not answer sensibly: an outage, a timeout, a 5xx, a 429, a shape we do
 * not understand. Never a "no": callers answer non-200 so the app retries.
 */
export class StoreUnreachable extends Error {
	constructor(
		readonly store: Store,
		message: string,
		readonly options: {
			retryAfterSeconds?: number;
			cause?: unknown;
			/** The store answered that this app's quota is used up (429): its limiter holds every caller until retryAfterSeconds. */
			throttled?: boolean;
		} = {},
	) {
		super(message);
		this.name = "StoreUnreachable";
	}
}

/**
 * The app is not set up for what the request asks: evidence for a store the app has no configuration for, a
 * transaction id for an app without App Store Server API credentials. The caller can act on it (send other
 * evidence, or the operator adds the configuration): a 400, never a verdict on the purchase.
 */
export class NotConfigured extends Error {
	constructor(
		message: string,
		/** The part of the request that asked for it: evidence of a store, or a form of evidence. */
		readonly part: EvidencePart | "store",
	) {
		super(message);
		this.name = "NotConfigured";
	}
}

/**
 * The deployment's configuration is there but cannot be used: a private key that does not import, credentials a
 * store refuses, a D1 database without its schema. Nothing the caller did: a 503 so apps retry, and the message
 * tells the operator what to fix (never a secret). `detail` goes to the log only.
 */
export class Misconfigured extends Error {
	constructor(
		message: string,
		readonly detail?: unknown,
	) {
		super(message);
		this.name = "Misconfigured";
	}
}

/** The part of the evidence a store refused to even read (a 414 or 431 to a token): fix the request, do not retry it. */
export type EvidencePart = "purchaseToken" | "signedTransaction" | "receipt" | "transactionId" | "receiptId" | "amazonUserId";

export class InvalidEvidence extends Error {
	constructor(
		readonly part: EvidencePart,
		message: string,
	) {
		super(message);
		this.name = "InvalidEvidence";
	}
}

/**
 * A store notification that is not to be acted on: its sender could not be authenticated (a Pub/Sub push without
 * a valid OIDC token), or what it carries does not verify or names no app here. Nothing is written; the store may
 * retry, and a retry of the same message is refused the same way.
 */
export class InvalidNotification extends Error {
	constructor(
		readonly reason: "unauthenticated" | "invalid",
		message: string,
	) {
		super(message);
		this.name = "InvalidNotification";
	}
}

/**
 * The purchase is verified and reserved for the user by its claim, but D1 could not record it yet. The claim
 * repairs D1 on its own; the caller is told to retry, never "no".
 */
export class HistoryUnavailable extends Error {
	constructor(message: string) {
		super(message);
		this.name = "HistoryUnavailable";
	}
}
