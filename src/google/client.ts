import type { Endpoints, GoogleServiceAccount } from "../config/schema";
import { InvalidEvidence, Misconfigured, StoreUnreachable } from "../answers";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
import { withinQuota, type QuotaContext } from "../quota/gate";
import { getAccessToken, invalidateAccessToken } from "./auth";
import { GoogleErrorEnvelope, ProductPurchase, SubscriptionPurchaseV2, VoidedPurchasesResponse } from "./schemas";
import type { z } from "zod";

/**
 * Google Play Developer API (androidpublisher v3) calls used for verification. Outages, timeouts, 5xx, 429
 * and unreadable answers throw StoreUnreachable; Google's own "no" (400, 404, 410) throws GoogleRejected.
 */

/** Google answered, and the answer is that this token is not a valid purchase for this app and product. */
export class GoogleRejected extends Error {
	constructor(
		readonly status: number,
		readonly reason: string,
		readonly raw: unknown,
	) {
		super(`Google answered ${status} (${reason})`);
		this.name = "GoogleRejected";
	}
}

export interface GooglePlayClientOptions {
	packageName: string;
	serviceAccount: GoogleServiceAccount;
	endpoints: Endpoints;
	timeoutMs: number;
	/** The app whose quota the calls spend (src/quota/gate.ts). */
	quota?: QuotaContext;
}

/**
 * Google's quota bucket of a path (https://developers.google.com/android-publisher/quotas): Subscriptions covers
 * purchases.subscriptions and subscriptionsv2, One-time Purchases covers purchases.products.
 */
function bucketOf(path: string): string {
	if (path.startsWith("purchases/subscriptions")) return "subscriptions";
	if (path.startsWith("purchases/products")) return "one_time_purchases";
	return "voided_purchases";
}

/** Reasons Google gives when a quota is used up: 429 RESOURCE_EXHAUSTED, or a 403 in the usageLimits domain (daily quota). */
const QUOTA_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED"]);

/** Marks an attempt to be made again with a fresh access token. */
const RETRY_WITH_FRESH_TOKEN = Symbol("retry with a fresh token");

export class GooglePlayClient {
	constructor(private readonly options: GooglePlayClientOptions) {}

	get packageName(): string {
		return this.options.packageName;
	}

	getProduct(productId: string, token: string) {
		return this.#call("GET", `purchases/products/${enc(productId)}/tokens/${enc(token)}`, ProductPurchase);
	}

	getSubscription(token: string) {
		return this.#call("GET", `purchases/subscriptionsv2/tokens/${enc(token)}`, SubscriptionPurchaseV2);
	}

	/**
	 * purchases.voidedpurchases.list, subscriptions included (type=1): purchases voided (refunded, charged back)
	 * between two times, a page at a time. Google keeps 30 days.
	 */
	listVoidedPurchases(window: { startTime: number; endTime: number }, pageToken?: string) {
		const query = new URLSearchParams({ startTime: String(window.startTime), endTime: String(window.endTime), type: "1", maxResults: "1000" });
		if (pageToken !== undefined) query.set("token", pageToken);
		return this.#call("GET", `purchases/voidedpurchases?${query}`, VoidedPurchasesResponse);
	}

	async acknowledgeProduct(productId: string, token: string): Promise<void> {
		await this.#call("POST", `purchases/products/${enc(productId)}/tokens/${enc(token)}:acknowledge`, null);
	}

	async acknowledgeSubscription(productId: string, token: string): Promise<void> {
		await this.#call("POST", `purchases/subscriptions/${enc(productId)}/tokens/${enc(token)}:acknowledge`, null);
	}

	async consumeProduct(productId: string, token: string): Promise<void> {
		await this.#call("POST", `purchases/products/${enc(productId)}/tokens/${enc(token)}:consume`, null);
	}

	async #call<S extends z.ZodType>(method: "GET" | "POST", path: string, schema: S | null): Promise<{ value: z.infer<S>; raw: unknown }> {
		const { packageName, serviceAccount, endpoints, timeoutMs, quota } = this.options;
		const url = `${endpoints.googlePlay}/androidpublisher/v3/applications/${enc(packageName)}/${path}`;
		// One retry with a fresh token if Google says ours is no longer good (revoked, or expired early). Each attempt
		// is a call against the bucket's quota.
		for (let attempt = 0; ; attempt++) {
			const accessToken = await getAccessToken(serviceAccount, timeoutMs);
			const result = await withinQuota(quota, { store: "google_play", bucket: bucketOf(path), environment: "Production" }, async () => {
				const response = await storeFetch(
					"google_play",
					url,
					{
						method,
						headers: {
							authorization: `Bearer ${accessToken}`,
							accept: "application/json",
							...(method === "POST" ? { "content-type": "application/json" } : {}),
						},
						...(method === "POST" ? { body: "{}" } : {}),
					},
					timeoutMs,
				);
				if (response.status === 401 && attempt === 0) {
					invalidateAccessToken(serviceAccount, accessToken);
					await response.body?.cancel();
					return RETRY_WITH_FRESH_TOKEN;
				}
				return this.#judge(response, schema);
			});
			if (result !== RETRY_WITH_FRESH_TOKEN) return result;
		}
	}

	async #judge<S extends z.ZodType>(response: Response, schema: S | null): Promise<{ value: z.infer<S>; raw: unknown }> {
		if (response.ok) {
			if (schema === null) {
				await response.body?.cancel();
				return { value: undefined as z.infer<S>, raw: null };
			}
			const raw = await readJson("google_play", response);
			const parsed = schema.safeParse(raw);
			if (!parsed.success) throw new StoreUnreachable("google_play", "Google answered a shape this service does not understand");
			return { value: parsed.data, raw };
		}
		if (response.status >= 500) {
			await response.body?.cancel();
			throw new StoreUnreachable("google_play", `Google answered ${response.status}`, { retryAfterSeconds: retryAfterSeconds(response) });
		}
		const raw = await response.json().catch(() => null);
		const envelope = GoogleErrorEnvelope.safeParse(raw);
		const reason = envelope.success ? (envelope.data.error.errors?.[0]?.reason ?? envelope.data.error.status ?? "unknown") : "unknown";
		if (response.status === 429 || (response.status === 403 && envelope.success && isQuotaError(envelope.data))) {
			// This app's quota is used up: not the purchase's fault, nor the credentials'. The limiter holds every caller.
			throw new StoreUnreachable("google_play", `Google answered ${response.status} (${reason}): quota exceeded`, {
				retryAfterSeconds: retryAfterSeconds(response) ?? retryDelaySeconds(envelope.success ? envelope.data : undefined),
				throttled: true,
			});
		}
		switch (response.status) {
			case 400:
			case 404:
			case 410:
				throw new GoogleRejected(response.status, reason, raw);
			case 401:
			case 403:
				// 401 after a fresh token, 403 (no Play Console access to this package): the deployment's credentials are
				// wrong. Not a verdict on the purchase, so never a "no" to the app.
				throw new Misconfigured(`Google refused this deployment's credentials for ${this.options.packageName} (${response.status} ${reason}): check the service account's access in Play Console`);
			case 413:
			case 414:
			case 431:
				// Our request was too large for Google to read: the token the caller sent, never the credentials.
				throw new InvalidEvidence("purchaseToken", `Google refused the request as too large (${response.status}): not a purchase token`);
			default:
				// 405, 409 and anything Google may add: no verdict, so the app retries.
				throw new StoreUnreachable("google_play", `Google answered ${response.status} (${reason})`);
		}
	}
}

function isQuotaError(envelope: GoogleErrorEnvelope): boolean {
	const { error } = envelope;
	return error.status === "RESOURCE_EXHAUSTED" || (error.errors ?? []).some((e) => e.domain === "usageLimits" || QUOTA_REASONS.has(e.reason ?? ""));
}

/**
 * The wait Google states in its error body, when it sends no Retry-After: a google.rpc.RetryInfo detail whose
 * retryDelay is a protobuf Duration in JSON ("12s", "1.5s"; https://cloud.google.com/apis/design/errors).
 */
export function retryDelaySeconds(envelope: GoogleErrorEnvelope | undefined): number | undefined {
	for (const detail of envelope?.error.details ?? []) {
		if (detail["@type"] !== "type.googleapis.com/google.rpc.RetryInfo") continue;
		const match = /^(\d+(?:\.\d+)?)s$/.exec(String(detail.retryDelay ?? ""));
		if (match) return Math.max(1, Math.ceil(Number(match[1])));
	}
	return undefined;
}

function enc(segment: string): string {
	return encodeURIComponent(segment);
}
