/**
 * Apple's signed data — transactions, renewal info, notifications, app transactions — verified the way Apple's
 * SignedDataVerifier (https://github.com/apple/app-store-server-library-node) does it with online checks off: a
 * compact ES256 JWS (https://developer.apple.com/documentation/appstoreserverapi/jwsdecodedheader) whose x5c chains
 * to a trusted root at the time Apple signed it, then the app's own checks (bundle id, app id, environment).
 */
import { base64url, decodeProtectedHeader } from "jose";
import { verifyCertificateChain, type TrustStore } from "./chain";
import { AppleVerificationError } from "./errors";

export type AppleEnvironment = "Production" | "Sandbox" | "Xcode" | "LocalTesting";

export interface JwsHeader {
	alg: "ES256";
	x5c?: unknown;
	kid?: unknown;
	[name: string]: unknown;
}

export interface VerifiedSignedData<Payload = Record<string, unknown>> {
	header: JwsHeader;
	payload: Payload;
	environment: AppleEnvironment;
}

export interface SignedDataOptions {
	roots: TrustStore;
	/** Accept Xcode and LocalTesting data, which no chain vouches for. Development builds only. */
	allowLocalTesting: boolean;
	/** Milliseconds; the effective date when the payload has no signedDate or receiptCreationDate. */
	now?: number;
}

/** What an app's configuration says about its Apple side (config's AppleAppConfig fits). */
export interface AppleAppPolicy {
	bundleId: string;
	appAppleId: number;
	allowLocalTesting: boolean;
}

const ES256 = { name: "ECDSA", hash: "SHA-256" } as const;
const encoder = new TextEncoder();

export async function verifyAppleSignedData(jws: string, options: SignedDataOptions): Promise<VerifiedSignedData> {
	const { header, payload, signature, signingInput } = decodeJws(jws);
	const environment = environmentOf(payload);
	if (environment === "Xcode" || environment === "LocalTesting") {
		if (!options.allowLocalTesting) {
			throw new AppleVerificationError("local_testing_not_allowed", `${environment}-signed data is accepted only where allowLocalTesting is on`);
		}
		// Xcode signs with a throwaway key no chain vouches for; Apple's own verifier returns such data unchecked.
		return { header, payload, environment };
	}
	if (!Array.isArray(header.x5c)) throw new AppleVerificationError("malformed", "the JWS header has no x5c certificate chain");
	const now = options.now ?? Date.now();
	const leafKey = await verifyCertificateChain(header.x5c, options.roots, effectiveDateOf(payload, now), now);
	if (!(await crypto.subtle.verify(ES256, leafKey, signature, signingInput))) {
		throw new AppleVerificationError("invalid_signature", "the JWS signature does not verify with the leaf certificate's key");
	}
	return { header, payload, environment };
}

export interface TransactionOptions {
	roots: TrustStore;
	app: AppleAppPolicy;
	acceptSandbox: boolean;
	now?: number;
}

/** A signed transaction (JWSTransactionDecodedPayload) for this app, in an environment it accepts. */
export async function verifyAppleTransaction(jws: string, options: TransactionOptions): Promise<VerifiedSignedData<AppleTransaction>> {
	const { app } = options;
	const verified = await verifyAppleSignedData(jws, { roots: options.roots, allowLocalTesting: app.allowLocalTesting, now: options.now });
	const payload = readPayload(TRANSACTION_FIELDS, verified.payload, "transaction");
	if (payload.bundleId !== app.bundleId) {
		throw new AppleVerificationError("wrong_bundle_id", `the transaction is for bundle ${JSON.stringify(payload.bundleId)}, not ${JSON.stringify(app.bundleId)}`);
	}
	// Apple omits appAppleId outside Production, and its verifier checks it only there.
	if (verified.environment === "Production" && payload.appAppleId !== undefined && payload.appAppleId !== app.appAppleId) {
		throw new AppleVerificationError("wrong_app_apple_id", `the transaction is for app ${payload.appAppleId}, not ${app.appAppleId}`);
	}
	assertEnvironmentAccepted(verified.environment, options.acceptSandbox);
	return { ...verified, payload };
}

export interface RenewalInfoOptions {
	roots: TrustStore;
	app: Pick<AppleAppPolicy, "allowLocalTesting">;
	acceptSandbox: boolean;
	now?: number;
}

/** Signed renewal info (JWSRenewalInfoDecodedPayload). It names no bundle, so only the environment is checked. */
export async function verifyAppleRenewalInfo(jws: string, options: RenewalInfoOptions): Promise<VerifiedSignedData<AppleRenewalInfo>> {
	const verified = await verifyAppleSignedData(jws, { roots: options.roots, allowLocalTesting: options.app.allowLocalTesting, now: options.now });
	const payload = readPayload(RENEWAL_INFO_FIELDS, verified.payload, "renewal info");
	assertEnvironmentAccepted(verified.environment, options.acceptSandbox);
	return { ...verified, payload };
}

function assertEnvironmentAccepted(environment: AppleEnvironment, acceptSandbox: boolean): void {
	if (environment === "Sandbox" && !acceptSandbox) {
		throw new AppleVerificationError("environment_not_accepted", "Sandbox purchases are not accepted for this app (acceptSandbox is off)");
	}
}

interface DecodedJws {
	header: JwsHeader;
	payload: Record<string, unknown>;
	signature: Uint8Array<ArrayBuffer>;
	/** Typed as the runtime's own TextEncoder makes it, which its crypto.subtle accepts. */
	signingInput: ReturnType<TextEncoder["encode"]>;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeJws(jws: string): DecodedJws {
	const first = typeof jws === "string" ? jws.indexOf(".") : -1;
	const second = first < 0 ? -1 : jws.indexOf(".", first + 1);
	if (second < 0 || jws.indexOf(".", second + 1) >= 0) throw new AppleVerificationError("malformed", "not a compact JWS (three dot-separated parts)");
	const header = decodeHeader(jws, jws.slice(0, first));
	const payload = parseJsonObject(decodeSegment(jws.slice(first + 1, second), "payload"), "payload");
	const signature = decodeSegment(jws.slice(second + 1), "signature") as Uint8Array<ArrayBuffer>;
	if (signature.length !== 64) throw new AppleVerificationError("invalid_signature", "an ES256 signature is 64 bytes (r‖s)");
	return { header, payload, signature, signingInput: encoder.encode(jws.slice(0, second)) };
}

/** One base64url JWS segment to bytes, with jose's decoder; anything it refuses is a malformed JWS. */
function decodeSegment(segment: string, what: string): Uint8Array {
	try {
		return base64url.decode(segment);
	} catch {
		throw new AppleVerificationError("malformed", `the JWS ${what} is not base64url`);
	}
}

/**
 * The last few headers decoded, with their base64url text. Every JWS one App Store leaf signs carries the same
 * header ({ alg, x5c }), so a hit skips decoding its ~3.7 KB of base64 and JSON, and hands the chain cache the very
 * same x5c strings, whose hashes V8 has already computed. Compared with === against a short list, not looked up in
 * a Map: hashing the text would cost most of what decoding it does (bench/README.md). It memoizes a pure function
 * of the text and trusts nothing; headers are frozen because callers share them.
 */
const recentHeaders: { segment: string; header: JwsHeader }[] = [];
const MAX_RECENT_HEADERS = 8;

function decodeHeader(jws: string, segment: string): JwsHeader {
	for (const known of recentHeaders) if (known.segment === segment) return known.header;
	let header: Record<string, unknown>;
	try {
		// jose reads the protected header: base64url, strict UTF-8, a JSON object.
		header = decodeProtectedHeader(jws);
	} catch {
		throw new AppleVerificationError("malformed", "the JWS header is not a base64url JSON object");
	}
	// Only ES256, whatever the header claims: `none`, or HS256 "keyed" with the public key, must never verify.
	if (header.alg !== "ES256") throw new AppleVerificationError("unsupported_algorithm", `JWS alg ${JSON.stringify(header.alg)} is not ES256`);
	if ("crit" in header) throw new AppleVerificationError("unsupported_algorithm", "the JWS header has critical extensions (crit) we do not understand");
	deepFreeze(header);
	if (recentHeaders.unshift({ segment, header: header as JwsHeader }) > MAX_RECENT_HEADERS) recentHeaders.pop();
	return header as JwsHeader;
}

/** Freezes a JSON value and everything in it; iterative, so a header nested thousands deep cannot overflow the stack. */
function deepFreeze(root: unknown): void {
	const pending: unknown[] = [root];
	while (pending.length > 0) {
		const value = pending.pop();
		if (typeof value !== "object" || value === null || Object.isFrozen(value)) continue;
		Object.freeze(value);
		pending.push(...Object.values(value));
	}
}

function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
	let value: unknown;
	try {
		value = JSON.parse(utf8.decode(bytes));
	} catch {
		// Not UTF-8 (TextDecoder's TypeError) or not JSON (SyntaxError): either way not Apple's.
		throw new AppleVerificationError("malformed", `the JWS ${what} is not JSON`);
	}
	if (typeof value !== "object" || value === null || Array.isArray(value)) throw new AppleVerificationError("malformed", `the JWS ${what} is not a JSON object`);
	return value as Record<string, unknown>;
}

const ENVIRONMENTS: ReadonlySet<unknown> = new Set<AppleEnvironment>(["Production", "Sandbox", "Xcode", "LocalTesting"]);

/**
 * Where each kind of signed data names its environment, in the order Apple's verifier looks: transactions and
 * renewal info at the top, app transactions as receiptType, notifications in data, summary, an external purchase
 * token (Sandbox iff its id starts with SANDBOX) or appData.
 */
function environmentOf(payload: Record<string, unknown>): AppleEnvironment {
	const field = (value: unknown, name: string) => (typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined);
	const token = payload.externalPurchaseToken;
	const externalPurchaseId = field(token, "externalPurchaseId");
	const value =
		payload.environment ??
		payload.receiptType ??
		field(payload.data, "environment") ??
		field(payload.summary, "environment") ??
		(typeof externalPurchaseId === "string" ? (externalPurchaseId.startsWith("SANDBOX") ? "Sandbox" : "Production") : undefined) ??
		field(payload.appData, "environment");
	if (!ENVIRONMENTS.has(value)) throw new AppleVerificationError("malformed", "the payload names no known environment");
	return value as AppleEnvironment;
}

/** Apple checks the chain at signing time, not now: a purchase signed last year stays verifiable. */
function effectiveDateOf(payload: Record<string, unknown>, now: number): number {
	for (const name of ["signedDate", "receiptCreationDate"]) {
		const value = payload[name];
		if (value === undefined) continue;
		if (typeof value !== "number" || !Number.isFinite(value)) throw new AppleVerificationError("malformed", `${name} is not a number of milliseconds`);
		// Xcode writes fractional milliseconds (1697679936049.7297); Apple's libraries truncate.
		return Math.trunc(value);
	}
	return now;
}

/**
 * The payload fields this service reads, each with the JSON type it must have. Apple marks every field optional;
 * the ones a purchase cannot be recorded without are required here. Enumerations stay open strings and numbers, as
 * in Apple's own validators, and unknown fields pass through. A table and one loop rather than a zod schema: this
 * runs on every verification, and the first one in a new isolate would otherwise pay for building the schema's
 * parser (bench/README.md, "first call").
 */
const FIELD_TYPES = {
	/** Any string. */
	string: (value: unknown) => typeof value === "string",
	/** A string with something in it: identifiers. */
	id: (value: unknown) => typeof value === "string" && value.length > 0,
	/** Milliseconds since the epoch; fractions are truncated, as Apple's libraries do. */
	millis: (value: unknown) => typeof value === "number" && Number.isFinite(value),
	number: (value: unknown) => typeof value === "number" && Number.isFinite(value),
	integer: (value: unknown) => Number.isSafeInteger(value),
	count: (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0,
	boolean: (value: unknown) => typeof value === "boolean",
	environment: (value: unknown) => ENVIRONMENTS.has(value),
	strings: (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === "string"),
} as const;

type FieldType = keyof typeof FIELD_TYPES;
interface FieldTypeValues {
	string: string;
	id: string;
	millis: number;
	number: number;
	integer: number;
	count: number;
	boolean: boolean;
	environment: AppleEnvironment;
	strings: string[];
}
const EXPECTED: Record<FieldType, string> = {
	string: "a string",
	id: "a non-empty string",
	millis: "a number of milliseconds",
	number: "a number",
	integer: "an integer",
	count: "a non-negative integer",
	boolean: "true or false",
	environment: "Production, Sandbox, Xcode or LocalTesting",
	strings: "an array of strings",
};

interface FieldSpec {
	readonly type: FieldType;
	readonly required: boolean;
}
const required = <T extends FieldType>(type: T) => ({ type, required: true }) as const;
const optional = <T extends FieldType>(type: T) => ({ type, required: false }) as const;

/** The payload type a field table describes: required fields, optional ones, and whatever else Apple sent. */
type PayloadOf<Fields extends Record<string, FieldSpec>> = {
	-readonly [Name in keyof Fields as Fields[Name]["required"] extends true ? Name : never]: FieldTypeValues[Fields[Name]["type"]];
} & {
	-readonly [Name in keyof Fields as Fields[Name]["required"] extends true ? never : Name]?: FieldTypeValues[Fields[Name]["type"]];
} & { [unknownField: string]: unknown };

function readPayload<Fields extends Record<string, FieldSpec>>(fields: Fields, payload: Record<string, unknown>, what: string): PayloadOf<Fields> {
	const out: Record<string, unknown> = { ...payload };
	for (const name in fields) {
		const { type, required } = fields[name]!;
		const value = Object.hasOwn(payload, name) ? payload[name] : undefined;
		if (value === undefined) {
			if (required) throw new AppleVerificationError("malformed", `${what} field ${name}: required, ${EXPECTED[type]}`);
			continue;
		}
		if (!FIELD_TYPES[type](value)) throw new AppleVerificationError("malformed", `${what} field ${name}: expected ${EXPECTED[type]}`);
		if (type === "millis") out[name] = Math.trunc(value as number);
	}
	return out as PayloadOf<Fields>;
}

/** JWSTransactionDecodedPayload: https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload */
const TRANSACTION_FIELDS = {
	transactionId: required("id"),
	originalTransactionId: required("id"),
	bundleId: required("string"),
	productId: required("id"),
	purchaseDate: required("millis"),
	environment: required("environment"),
	originalPurchaseDate: optional("millis"),
	expiresDate: optional("millis"),
	signedDate: optional("millis"),
	revocationDate: optional("millis"),
	revocationReason: optional("integer"),
	revocationType: optional("string"),
	revocationPercentage: optional("number"),
	type: optional("string"),
	quantity: optional("count"),
	appAccountToken: optional("string"),
	webOrderLineItemId: optional("string"),
	subscriptionGroupIdentifier: optional("string"),
	inAppOwnershipType: optional("string"),
	isUpgraded: optional("boolean"),
	offerType: optional("integer"),
	offerIdentifier: optional("string"),
	offerDiscountType: optional("string"),
	offerPeriod: optional("string"),
	storefront: optional("string"),
	storefrontId: optional("string"),
	transactionReason: optional("string"),
	currency: optional("string"),
	price: optional("number"),
	appTransactionId: optional("string"),
	appAppleId: optional("integer"),
} as const;
export type AppleTransaction = PayloadOf<typeof TRANSACTION_FIELDS>;

/** JWSRenewalInfoDecodedPayload, on the same terms: https://developer.apple.com/documentation/appstoreserverapi/jwsrenewalinfodecodedpayload */
const RENEWAL_INFO_FIELDS = {
	originalTransactionId: required("id"),
	environment: required("environment"),
	productId: optional("string"),
	autoRenewProductId: optional("string"),
	autoRenewStatus: optional("integer"),
	expirationIntent: optional("integer"),
	isInBillingRetryPeriod: optional("boolean"),
	priceIncreaseStatus: optional("integer"),
	gracePeriodExpiresDate: optional("millis"),
	renewalDate: optional("millis"),
	recentSubscriptionStartDate: optional("millis"),
	signedDate: optional("millis"),
	offerType: optional("integer"),
	offerIdentifier: optional("string"),
	offerDiscountType: optional("string"),
	offerPeriod: optional("string"),
	currency: optional("string"),
	renewalPrice: optional("number"),
	eligibleWinBackOfferIds: optional("strings"),
	appAccountToken: optional("string"),
	appTransactionId: optional("string"),
} as const;
export type AppleRenewalInfo = PayloadOf<typeof RENEWAL_INFO_FIELDS>;
