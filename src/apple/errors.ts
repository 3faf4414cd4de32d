/**
 * Why Apple signed data or a legacy receipt was refused. Codes are a closed set so callers can map each one to a
 * refusal in one exhaustive switch; messages are for logs and never carry key or certificate material.
 */

export type AppleVerificationCode =
	/** Not a compact JWS, not JSON, a certificate that does not parse, a payload field of the wrong type. */
	| "malformed"
	/** A JWS `alg` other than ES256, a `crit` header, a certificate signed or keyed with something we do not verify. */
	| "unsupported_algorithm"
	/** x5c does not hold exactly leaf, intermediate and root. */
	| "invalid_chain_length"
	/** A link of the chain is not signed by, or not named after, the next; or no configured root issued it. */
	| "untrusted_chain"
	/** The leaf or intermediate lacks the extension that marks it as Apple's App Store signing certificate. */
	| "missing_apple_oid"
	| "not_a_ca"
	| "certificate_not_valid_at_date"
	/** The JWS signature does not verify with the leaf key. */
	| "invalid_signature"
	| "local_testing_not_allowed"
	| "wrong_bundle_id"
	| "wrong_app_apple_id"
	| "environment_not_accepted";

export class AppleVerificationError extends Error {
	constructor(
		readonly code: AppleVerificationCode,
		message: string,
	) {
		super(message);
		this.name = "AppleVerificationError";
	}
}

/**
 * A legacy app receipt that cannot be read. Reading is all receipt.ts does, so there is one code: whether the
 * receipt is genuine is for Apple to say.
 */
export class AppleReceiptError extends Error {
	readonly code = "malformed_receipt";

	constructor(message: string) {
		super(message);
		this.name = "AppleReceiptError";
	}
}
