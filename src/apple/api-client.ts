import { SignJWT, importPKCS8 } from "jose";
import * as z from "zod";
import type { AppleAppConfig, Endpoints } from "../config/schema";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
import { Misconfigured, StoreUnreachable } from "../answers";
import { withinQuota, type QuotaContext } from "../quota/gate";

/**
 * App Store Server API calls (https://developer.apple.com/documentation/appstoreserverapi). Each request carries a fresh ES256 bearer
 * token, as Apple asks. Outages, rate limits, retryable codes, 5xx, our own credentials being refused and
 * unreadable answers throw StoreUnreachable; Apple's own "no such transaction" throws AppleRejected.
 */

export type AppleApiEnvironment = "Production" | "Sandbox";
export type AppleApiCredentials = NonNullable<AppleAppConfig["api"]>;

/** Apple answered, and the answer is that this transaction id is not one of this app's transactions. */
export class AppleRejected extends Error {
	constructor(
		readonly status: number,
		readonly errorCode: number,
		readonly raw: unknown,
	) {
		super(`Apple answered ${status} (errorCode ${errorCode})`);
		this.name = "AppleRejected";
	}
}

/**
 * Codes that are a verdict on the id we sent: not found (4040010, 4040005), not a transaction id (4000006,
 * 4000048: an app transaction id). Every other code, known or not, says nothing about the purchase.
 */
const REJECTING_CODES = new Set([4000006, 4000048, 4040005, 4040010]);
const TRANSACTION_ID_NOT_FOUND = 4040010;
/** RateLimitExceededError, answered with HTTP 429 and a Retry-After in epoch milliseconds. */
const RATE_LIMIT_EXCEEDED = 4290000;

/** Apple refuses tokens living longer than 60 minutes; 5 minutes, as Apple's own libraries use, is plenty for one call. */
const TOKEN_LIFETIME_SECONDS = 300;

const ErrorBody = z.looseObject({ errorCode: z.number().int(), errorMessage: z.string().optional() });

export const TransactionInfoResponse = z.looseObject({ signedTransactionInfo: z.string().min(1) });

const LastTransaction = z.looseObject({
	/** 1 active, 2 expired, 3 billing retry, 4 billing grace period, 5 revoked */
	status: z.number().int(),
	originalTransactionId: z.string(),
	signedTransactionInfo: z.string().min(1),
	signedRenewalInfo: z.string().optional(),
});

export const StatusResponse = z.looseObject({
	environment: z.string().optional(),
	bundleId: z.string().optional(),
	appAppleId: z.number().optional(),
	data: z.array(z.looseObject({ subscriptionGroupIdentifier: z.string().optional(), lastTransactions: z.array(LastTransaction) })),
});
export type StatusResponse = z.infer<typeof StatusResponse>;

export const NotificationHistoryResponse = z.looseObject({
	notificationHistory: z.array(z.looseObject({ signedPayload: z.string().min(1) })),
	hasMore: z.boolean(),
	paginationToken: z.string().optional(),
});
export type NotificationHistoryResponse = z.infer<typeof NotificationHistoryResponse>;

export interface AppStoreServerApiOptions {
	bundleId: string;
	credentials: AppleApiCredentials;
	endpoints: Endpoints;
	timeoutMs: number;
	/** The app whose quota the calls spend (src/quota/gate.ts). */
	quota?: QuotaContext;
}

/** Apple limits each endpoint apart (https://developer.apple.com/documentation/appstoreserverapi/identifying-rate-limits): the bucket a path spends. */
function bucketOf(path: string): string {
	if (path.startsWith("/inApps/v1/subscriptions/")) return "subscription_statuses";
	if (path.startsWith("/inApps/v1/notifications/history")) return "notification_history";
	return "transactions";
}

/** Where to look: one known environment, or Production first and Sandbox only when the app accepts Sandbox. */
export type Lookup = { environment: AppleApiEnvironment } | { acceptSandbox: boolean };

export interface Found<T> {
	value: T;
	/** The environment whose server answered. */
	environment: AppleApiEnvironment;
	raw: unknown;
}

export class AppStoreServerApiClient {
	constructor(private readonly options: AppStoreServerApiOptions) {}

	/** Get Transaction Info: the signed transaction for a transaction id (original ids work too). */
	getTransactionInfo(transactionId: string, lookup: Lookup): Promise<Found<z.infer<typeof TransactionInfoResponse>>> {
		return this.#lookUp(`/inApps/v1/transactions/${encodeURIComponent(transactionId)}`, TransactionInfoResponse, lookup);
	}

	/** Get All Subscription Statuses: the latest transaction of every subscription in the groups of this transaction. */
	getAllSubscriptionStatuses(transactionId: string, lookup: Lookup): Promise<Found<StatusResponse>> {
		return this.#lookUp(`/inApps/v1/subscriptions/${encodeURIComponent(transactionId)}`, StatusResponse, lookup);
	}

	async #lookUp<S extends z.ZodType>(path: string, schema: S, lookup: Lookup): Promise<Found<z.infer<S>>> {
		const environments: AppleApiEnvironment[] =
			"environment" in lookup ? [lookup.environment] : lookup.acceptSandbox ? ["Production", "Sandbox"] : ["Production"];
		for (const [i, environment] of environments.entries()) {
			try {
				const { value, raw } = await this.#get(environment, path, schema);
				return { value, raw, environment };
			} catch (err) {
				// A transaction lives in one environment: "not found" in Production sends a Sandbox purchase on to the
				// Sandbox server, as Apple recommends. Any other answer is final.
				const last = i === environments.length - 1;
				if (!last && err instanceof AppleRejected && err.errorCode === TRANSACTION_ID_NOT_FOUND) continue;
				throw err;
			}
		}
		throw new Error("unreachable: environments is never empty");
	}

	/**
	 * Get Notification History: the notifications Apple sent (or tried to send) between two times, a page at a time.
	 * Apple keeps them for 180 days.
	 */
	async getNotificationHistory(environment: AppleApiEnvironment, window: { startDate: number; endDate: number }, paginationToken?: string): Promise<NotificationHistoryResponse> {
		const query = paginationToken === undefined ? "" : `?paginationToken=${encodeURIComponent(paginationToken)}`;
		const { value } = await this.#get(environment, `/inApps/v1/notifications/history${query}`, NotificationHistoryResponse, window);
		return value;
	}

	#get<S extends z.ZodType>(environment: AppleApiEnvironment, path: string, schema: S, postBody?: unknown): Promise<{ value: z.infer<S>; raw: unknown }> {
		return withinQuota(this.options.quota, { store: "app_store", bucket: bucketOf(path), environment }, () => this.#getOnce(environment, path, schema, postBody));
	}

	async #getOnce<S extends z.ZodType>(environment: AppleApiEnvironment, path: string, schema: S, postBody?: unknown): Promise<{ value: z.infer<S>; raw: unknown }> {
		const { endpoints, timeoutMs } = this.options;
		const base = environment === "Production" ? endpoints.appleProduction : endpoints.appleSandbox;
		const token = await this.#bearerToken();
		const headers = { authorization: `Bearer ${token}`, accept: "application/json" };
		const response = await storeFetch(
			"app_store",
			`${base}${path}`,
			postBody === undefined
				? { method: "GET", headers }
				: { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(postBody) },
			timeoutMs,
		);
		if (response.ok) {
			const raw = await readJson("app_store", response);
			const parsed = schema.safeParse(raw);
			if (!parsed.success) throw new StoreUnreachable("app_store", `the App Store Server API (${environment}) answered a shape this service does not understand`);
			return { value: parsed.data, raw };
		}
		if (response.status === 401) {
			// Apple sends no body. Our key, key id, issuer id or bundle id is wrong: never a "no" to the user.
			await response.body?.cancel();
			throw new Misconfigured(`the App Store Server API (${environment}) refused this deployment's API key (401): check apple.api and bundleId`);
		}
		const raw = await response.json().catch(() => null);
		const body = ErrorBody.safeParse(raw);
		const errorCode = body.success ? body.data.errorCode : undefined;
		if (errorCode !== undefined && REJECTING_CODES.has(errorCode) && response.status < 500) {
			throw new AppleRejected(response.status, errorCode, raw);
		}
		// 429 (4290000), the retryable 404s (4040002/4/6: Apple's records are catching up), 5xx (5000000/1) and
		// any code we do not know: no verdict, so the app should retry.
		throw new StoreUnreachable("app_store", `the App Store Server API (${environment}) answered ${response.status}${errorCode === undefined ? "" : ` (errorCode ${errorCode})`}`, {
			retryAfterSeconds: appleRetryAfterSeconds(response),
			throttled: response.status === 429 || errorCode === RATE_LIMIT_EXCEEDED,
		});
	}

	/** A bearer token for one request (https://developer.apple.com/documentation/appstoreserverapi/generating-json-web-tokens-for-api-requests): ES256, kid, iss, iat, exp ≤ 60 min, aud, bid. */
	async #bearerToken(): Promise<string> {
		const { credentials, bundleId } = this.options;
		const key = await signingKey(credentials);
		const now = Math.floor(Date.now() / 1000);
		return new SignJWT({ bid: bundleId })
			.setProtectedHeader({ alg: "ES256", kid: credentials.keyId, typ: "JWT" })
			.setIssuer(credentials.issuerId)
			.setIssuedAt(now)
			.setExpirationTime(now + TOKEN_LIFETIME_SECONDS)
			.setAudience("appstoreconnect-v1")
			.sign(key);
	}
}

/** Imported keys, by key id and key: importing a .p8 costs more than signing with it. */
const signingKeys = new Map<string, Promise<CryptoKey>>();

/** The App Store Connect API key, imported once per isolate; Misconfigured when it is not a P-256 key (never quoting it). */
export function signingKey(credentials: AppleApiCredentials): Promise<CryptoKey> {
	const cacheKey = `${credentials.keyId}\n${credentials.privateKey}`;
	let key = signingKeys.get(cacheKey);
	if (!key) {
		key = importPKCS8(credentials.privateKey, "ES256").catch((err: unknown) => {
			signingKeys.delete(cacheKey);
			// The message never quotes the key. A key that cannot be used is our configuration, not the user's purchase.
			throw new Misconfigured(`apple.api.privateKey (key id ${credentials.keyId}) is not a usable P-256 PKCS#8 key`, err);
		});
		signingKeys.set(cacheKey, key);
	}
	return key;
}

/**
 * Apple's Retry-After is a UNIX time in milliseconds (https://developer.apple.com/documentation/appstoreserverapi/identifying-rate-limits), not the seconds or HTTP date of RFC 9110.
 * Anything that does not look like one falls back to the standard reading.
 */
export function appleRetryAfterSeconds(response: Response, now = Date.now()): number | undefined {
	const value = Number(response.headers.get("retry-after") ?? Number.NaN);
	if (Number.isFinite(value) && value > 1e12) return Math.max(1, Math.ceil((value - now) / 1000));
	return retryAfterSeconds(response);
}
