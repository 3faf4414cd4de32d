import * as z from "zod";
import type { Endpoints } from "../config/schema";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
import { InvalidEvidence, Refusal, StoreUnreachable } from "../answers";
import { withinQuota, type QuotaContext } from "../quota/gate";

/**
 * Apple's legacy verifyReceipt (https://developer.apple.com/documentation/appstorereceipts/verifyreceipt), for apps that have only a shared secret. Deprecated by Apple but
 * still answering. Production first; status 21007 ("this is a Sandbox receipt") moves on to Sandbox, and only
 * for an app that accepts Sandbox. Apple answers HTTP 200 for logical errors: the verdict is in `status`.
 */

export interface ReceiptTransaction {
	transactionId: string;
	originalTransactionId: string;
	productId: string;
	quantity: number;
	purchaseDateMs: number;
	originalPurchaseDateMs: number | null;
	/** Subscriptions only. */
	expiresDateMs: number | null;
	/** Set when Apple refunded or revoked the transaction. */
	cancellationDateMs: number | null;
	/** "0" other reason, "1" an issue in the app. */
	cancellationReason: string | null;
	webOrderLineItemId: string | null;
	appAccountToken: string | null;
	inAppOwnershipType: string | null;
	/** An auto-renewable subscription replaced by an upgrade. */
	isUpgraded: boolean;
	/** The entry as Apple sent it. */
	raw: unknown;
}

/** What pending_renewal_info says of one subscription (by original transaction id). */
export interface ReceiptRenewal {
	willRenew: boolean | null;
	inBillingRetry: boolean;
	graceExpiresAt: number | null;
}

export interface VerifiedReceipt {
	environment: "Production" | "Sandbox";
	bundleId: string;
	/** receipt.in_app and latest_receipt_info, one entry per transaction id (latest_receipt_info wins). */
	transactions: ReceiptTransaction[];
	/** pending_renewal_info, by original transaction id. */
	renewals: Map<string, ReceiptRenewal>;
}

export interface VerifyReceiptOptions {
	sharedSecret: string | undefined;
	acceptSandbox: boolean;
	endpoints: Endpoints;
	timeoutMs: number;
	/** The app whose quota the calls spend (src/quota/gate.ts). */
	quota?: QuotaContext;
}

// All _ms values are decimal strings (https://developer.apple.com/documentation/appstorereceipts/responsebody).
const millis = z.string().regex(/^\d+$/).transform(Number);

const Entry = z.looseObject({
	product_id: z.string().min(1),
	transaction_id: z.string().min(1),
	original_transaction_id: z.string().min(1),
	quantity: z.string().regex(/^\d+$/).transform(Number).optional(),
	purchase_date_ms: millis,
	original_purchase_date_ms: millis.optional(),
	expires_date_ms: millis.optional(),
	cancellation_date_ms: millis.optional(),
	cancellation_reason: z.string().optional(),
	web_order_line_item_id: z.string().optional(),
	app_account_token: z.string().optional(),
	in_app_ownership_type: z.string().optional(),
	is_upgraded: z.string().optional(),
});

const PendingRenewal = z.looseObject({
	original_transaction_id: z.string().min(1),
	auto_renew_status: z.string().optional(),
	is_in_billing_retry_period: z.string().optional(),
	grace_period_expires_date_ms: millis.optional(),
});

const Envelope = z.looseObject({ status: z.number().int(), "is-retryable": z.boolean().optional() });

const Valid = z.looseObject({
	status: z.number().int(),
	environment: z.enum(["Production", "Sandbox"]),
	receipt: z.looseObject({ bundle_id: z.string().min(1), in_app: z.array(Entry).default([]) }),
	latest_receipt_info: z.array(Entry).default([]),
	pending_renewal_info: z.array(PendingRenewal).default([]),
});

const SANDBOX_RECEIPT = 21007;

/** Statuses that are Apple's "no" about the receipt itself. */
const REFUSED: Record<number, string> = {
	21003: "Apple could not authenticate the receipt",
	// The secret is per app, so this is also what a receipt of another app gets.
	21004: "the receipt does not belong to the app whose shared secret was sent (or apple.sharedSecret is wrong)",
	21010: "Apple has no such account: treat the receipt as never purchased",
};

export async function verifyReceipt(receiptData: string, options: VerifyReceiptOptions): Promise<VerifiedReceipt> {
	const production = await post(options.endpoints.appleReceiptProduction, receiptData, options, "Production");
	if (production.status !== SANDBOX_RECEIPT) return judge(production, "Production");
	if (!options.acceptSandbox) {
		throw new Refusal("sandbox_not_accepted", "this is a Sandbox receipt and the app does not accept Sandbox purchases");
	}
	return judge(await post(options.endpoints.appleReceiptSandbox, receiptData, options, "Sandbox"), "Sandbox");
}

function post(url: string, receiptData: string, options: VerifyReceiptOptions, environment: "Production" | "Sandbox"): Promise<{ status: number; body: unknown }> {
	return withinQuota(options.quota, { store: "app_store", bucket: "verify_receipt", environment }, () => postOnce(url, receiptData, options));
}

async function postOnce(url: string, receiptData: string, options: VerifyReceiptOptions): Promise<{ status: number; body: unknown }> {
	const body = {
		"receipt-data": receiptData,
		...(options.sharedSecret === undefined ? {} : { password: options.sharedSecret }),
		// Every transaction, not only the latest renewal: the claimed one may be older.
		"exclude-old-transactions": false,
	};
	const response = await storeFetch(
		"app_store",
		url,
		{ method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(body) },
		options.timeoutMs,
	);
	if (response.status === 413) {
		await response.body?.cancel();
		throw new InvalidEvidence("receipt", "Apple refused the receipt as too large (413)");
	}
	if (!response.ok) {
		await response.body?.cancel();
		throw new StoreUnreachable("app_store", `verifyReceipt answered HTTP ${response.status}`, { retryAfterSeconds: retryAfterSeconds(response), throttled: response.status === 429 });
	}
	const json = await readJson("app_store", response);
	const envelope = Envelope.safeParse(json);
	if (!envelope.success) throw new StoreUnreachable("app_store", "verifyReceipt answered a shape this service does not understand");
	if (envelope.data["is-retryable"] === true) throw new StoreUnreachable("app_store", `verifyReceipt answered status ${envelope.data.status} and says to retry`);
	return { status: envelope.data.status, body: json };
}

function judge(answer: { status: number; body: unknown }, asked: "Production" | "Sandbox"): VerifiedReceipt {
	const { status } = answer;
	const refused = REFUSED[status];
	if (refused) throw new Refusal("invalid_purchase", `${refused} (verifyReceipt status ${status})`, answer.body);
	// 21006: valid, but an expired iOS 6-style subscription receipt; the receipt is still returned and expiry is
	// judged from its dates like any other.
	if (status !== 0 && status !== 21006) {
		// 21002/21005/21009/21100-21199 are Apple's own trouble; 21000 is ours; 21008 from Sandbox contradicts the
		// 21007 Production just gave. None is a verdict on the purchase.
		throw new StoreUnreachable("app_store", `verifyReceipt (${asked}) answered status ${status}`);
	}
	const parsed = Valid.safeParse(answer.body);
	if (!parsed.success) throw new StoreUnreachable("app_store", "verifyReceipt answered a shape this service does not understand");
	const byId = new Map<string, ReceiptTransaction>();
	for (const entry of [...parsed.data.receipt.in_app, ...parsed.data.latest_receipt_info]) byId.set(entry.transaction_id, toTransaction(entry));
	const renewals = new Map<string, ReceiptRenewal>();
	for (const r of parsed.data.pending_renewal_info) {
		renewals.set(r.original_transaction_id, {
			willRenew: r.auto_renew_status === undefined ? null : r.auto_renew_status === "1",
			inBillingRetry: r.is_in_billing_retry_period === "1",
			graceExpiresAt: r.grace_period_expires_date_ms ?? null,
		});
	}
	return { environment: parsed.data.environment, bundleId: parsed.data.receipt.bundle_id, transactions: [...byId.values()], renewals };
}

function toTransaction(entry: z.infer<typeof Entry>): ReceiptTransaction {
	return {
		transactionId: entry.transaction_id,
		originalTransactionId: entry.original_transaction_id,
		productId: entry.product_id,
		quantity: entry.quantity ?? 1,
		purchaseDateMs: entry.purchase_date_ms,
		originalPurchaseDateMs: entry.original_purchase_date_ms ?? null,
		expiresDateMs: entry.expires_date_ms ?? null,
		cancellationDateMs: entry.cancellation_date_ms ?? null,
		cancellationReason: entry.cancellation_reason ?? null,
		webOrderLineItemId: entry.web_order_line_item_id ?? null,
		appAccountToken: entry.app_account_token ?? null,
		inAppOwnershipType: entry.in_app_ownership_type ?? null,
		isUpgraded: entry.is_upgraded === "true",
		raw: entry,
	};
}
