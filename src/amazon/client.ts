import { InvalidEvidence, Misconfigured, StoreUnreachable } from "../answers";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
import { withinQuota, type QuotaContext } from "../quota/gate";
import { createLogger } from "../log";
import { RvsError, RvsReceipt } from "./schemas";

/**
 * Amazon's Receipt Verification Service (https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-android-apps.html):
 *   GET {endpoint}[/sandbox]/version/1.0/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}
 * every segment URL-encoded (user ids hold `=` and `+`). The shared secret is part of the URL, so the URL is never
 * logged, never put in an error, and any text that might quote it (a network error's message) is scrubbed first.
 * Outages, timeouts, 429, 5xx and unreadable answers throw StoreUnreachable; Amazon's own "no" (400 invalid receipt
 * id, 497 invalid user id, 410 a receipt no longer valid) throws AmazonRejected; 496 (the shared secret refused) is
 * this deployment's misconfiguration, never a verdict on the purchase.
 */

export type RejectionStatus = 400 | 410 | 497;

/** Amazon answered, and the answer is that this receipt is not a valid purchase for this user. */
export class AmazonRejected extends Error {
	constructor(
		readonly status: RejectionStatus,
		readonly reason: string,
		readonly raw: unknown,
	) {
		super(`Amazon answered ${status} (${reason})`);
		this.name = "AmazonRejected";
	}
}

const REJECTIONS: Record<RejectionStatus, string> = {
	400: "invalid receipt id",
	410: "the receipt is no longer valid",
	497: "invalid user id",
};

export interface RvsClientOptions {
	appId: string;
	sharedSecret: string;
	/** The RVS Cloud Sandbox rather than production. */
	sandbox: boolean;
	/** endpoints.amazon */
	endpoint: string;
	timeoutMs: number;
	/** The app's quota for RVS (src/quota/gate.ts); without it, calls are not counted. */
	quota?: QuotaContext;
}

/** Apps whose shared secret Amazon refused, so the operator is told once per isolate (until Amazon takes it again). */
const refusedSecrets = new Set<string>();

export class AmazonRvsClient {
	constructor(private readonly options: RvsClientOptions) {}

	get sandbox(): boolean {
		return this.options.sandbox;
	}

	/** Amazon's current word on one receipt of one Amazon user. */
	async verifyReceiptId(amazonUserId: string, receiptId: string): Promise<{ value: RvsReceipt; raw: unknown }> {
		const { endpoint, sandbox, sharedSecret, timeoutMs } = this.options;
		const url = `${endpoint}${sandbox ? "/sandbox" : ""}/version/1.0/verifyReceiptId/developer/${enc(sharedSecret)}/user/${enc(amazonUserId)}/receiptId/${enc(receiptId)}`;
		return withinQuota(this.options.quota, { store: "amazon", bucket: "receipts", environment: sandbox ? "Sandbox" : "Production" }, async () => {
			let response: Response;
			try {
				response = await storeFetch("amazon", url, { headers: { accept: "application/json" } }, timeoutMs);
			} catch (err) {
				if (err instanceof StoreUnreachable) throw new StoreUnreachable("amazon", this.#redact(err.message), { cause: this.#redactError(err.options.cause) });
				throw err;
			}
			return this.#judge(response, receiptId);
		});
	}

	async #judge(response: Response, receiptId: string): Promise<{ value: RvsReceipt; raw: unknown }> {
		const { status } = response;
		if (status === 200) {
			const raw = this.#scrub(await readJson("amazon", response));
			const parsed = RvsReceipt.safeParse(raw);
			if (!parsed.success) throw new StoreUnreachable("amazon", "Amazon answered a shape this service does not understand");
			if (parsed.data.receiptId !== receiptId) throw new StoreUnreachable("amazon", "Amazon answered about another receipt than the one asked for");
			refusedSecrets.delete(this.options.appId);
			return { value: parsed.data, raw };
		}
		if (status === 429 || status >= 500) {
			await response.body?.cancel();
			throw new StoreUnreachable("amazon", `Amazon answered ${status}`, { retryAfterSeconds: retryAfterSeconds(response), throttled: status === 429 });
		}
		const raw = this.#scrub(await response.json().catch(() => null));
		switch (status) {
			case 400:
			case 410:
			case 497: {
				const said = RvsError.safeParse(raw).data?.message;
				throw new AmazonRejected(status, said ? `${REJECTIONS[status]}: ${said}` : REJECTIONS[status], raw);
			}
			case 496: {
				const { appId } = this.options;
				if (!refusedSecrets.has(appId)) {
					refusedSecrets.add(appId);
					createLogger(`amazon:${appId}`).error("amazon_shared_secret_refused", { app: appId, sandbox: this.options.sandbox });
				}
				throw new Misconfigured(
					`Amazon refused app ${appId}'s shared secret (RVS 496): set apps[].amazon.sharedSecret to the key on the Developer Console's Shared Key page (https://developer.amazon.com/sdk/shared-key.html)`,
				);
			}
			case 413:
			case 414:
			case 431:
				// Our request was too long for Amazon to read: the ids the caller sent, never the credentials.
				throw new InvalidEvidence("receiptId", `Amazon refused the request as too large (${status}): not a receipt id`);
			default:
				// 404 and anything Amazon may add: no verdict, so the app retries.
				throw new StoreUnreachable("amazon", `Amazon answered ${status}`);
		}
	}

	/** Text that may quote the URL, with the shared secret (as sent, and as written) taken out. */
	#redact(text: string): string {
		const { sharedSecret } = this.options;
		return text.replaceAll(enc(sharedSecret), "[shared secret]").replaceAll(sharedSecret, "[shared secret]");
	}

	#redactError(cause: unknown): unknown {
		if (!(cause instanceof Error)) return cause;
		const redacted = new Error(this.#redact(cause.message));
		redacted.name = cause.name;
		return redacted;
	}

	/** An answer kept as `raw` (it reaches D1 and callers): never with the secret in it, whatever Amazon echoes. */
	#scrub(raw: unknown): unknown {
		const text = JSON.stringify(raw);
		if (text === undefined) return raw;
		const { sharedSecret } = this.options;
		return text.includes(sharedSecret) || text.includes(enc(sharedSecret)) ? JSON.parse(this.#redact(text)) : raw;
	}
}

function enc(segment: string): string {
	return encodeURIComponent(segment);
}
