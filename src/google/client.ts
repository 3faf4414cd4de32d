import type { Endpoints, GoogleServiceAccount } from "../config/schema";
import { InvalidEvidence, Misconfigured, StoreUnreachable } from "../answers";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
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
}

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
		const { packageName, serviceAccount, endpoints, timeoutMs } = this.options;
		const url = `${endpoints.googlePlay}/androidpublisher/v3/applications/${enc(packageName)}/${path}`;
		// One retry with a fresh token if Google says ours is no longer good (revoked, or expired early).
		for (let attempt = 0; ; attempt++) {
			const accessToken = await getAccessToken(serviceAccount, timeoutMs);
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
				continue;
			}
			return this.#judge(response, schema);
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
		if (response.status === 429 || response.status >= 500) {
			await response.body?.cancel();
			throw new StoreUnreachable("google_play", `Google answered ${response.status}`, { retryAfterSeconds: retryAfterSeconds(response) });
		}
		const raw = await response.json().catch(() => null);
		const envelope = GoogleErrorEnvelope.safeParse(raw);
		const reason = envelope.success ? (envelope.data.error.errors?.[0]?.reason ?? envelope.data.error.status ?? "unknown") : "unknown";
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

function enc(segment: string): string {
	return encodeURIComponent(segment);
}
