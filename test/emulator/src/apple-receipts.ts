import { Hono, type Context } from "hono";
import { buildAppReceipt } from "../../support/receipt-builder.ts";
import { injectedReceiptStatus } from "./apple-errors";
import { appleTransactions, type AppleTransactionRecord } from "./apple-transactions";
import { configOf } from "./config";
import { storeEndpoint } from "./store-endpoint";

/**
 * Legacy app receipts and verifyReceipt (https://developer.apple.com/documentation/appstorereceipts/verifyreceipt).
 * A receipt holds one account's transactions for one app in one environment. Apple authenticates a receipt by its
 * PKCS#7 signature; the emulator by having issued exactly those bytes, so a receipt edited or made up by a client
 * fails alike (21003). Mounted at {base}/apple/receipt:
 *   POST /production/verifyReceipt  (endpoints.appleReceiptProduction)
 *   POST /sandbox/verifyReceipt     (endpoints.appleReceiptSandbox)
 */

interface IssuedReceipt {
	bundleId: string;
	environment: AppleTransactionRecord["environment"];
	/** The transactions in the receipt when it was issued. */
	transactionIds: string[];
}

const issued = new Map<string, IssuedReceipt>();

/** The app receipt a device holding `t` would have: every transaction of that account for the app, so far. */
export function issueReceipt(t: AppleTransactionRecord, appAppleId: number | undefined): string {
	const transactions = [...appleTransactions.values()].filter((o) => o.account === t.account && o.bundleId === t.bundleId && o.environment === t.environment);
	const receipt = buildAppReceipt({
		bundleId: t.bundleId,
		environment: t.environment,
		...(appAppleId === undefined ? {} : { appAppleId }),
		inApp: transactions.map((o) => ({
			transactionId: o.transactionId,
			originalTransactionId: o.originalTransactionId,
			productId: o.productId,
			quantity: o.quantity,
			purchaseDate: o.purchaseDate,
			originalPurchaseDate: o.originalPurchaseDate,
			...(o.expiresDate === null ? {} : { expiresDate: o.expiresDate }),
			...(o.webOrderLineItemId === null ? {} : { webOrderLineItemId: o.webOrderLineItemId }),
		})),
	});
	issued.set(receipt, { bundleId: t.bundleId, environment: t.environment, transactionIds: transactions.map((o) => o.transactionId) });
	return receipt;
}

async function receiptDataOf(c: Context): Promise<{ receipt: string | undefined; password: unknown; json: boolean }> {
	const body = await c.req.raw.clone().json().catch(() => undefined);
	if (typeof body !== "object" || body === null) return { receipt: undefined, password: undefined, json: false };
	const value = (body as Record<string, unknown>)["receipt-data"];
	return { receipt: typeof value === "string" ? value : undefined, password: (body as Record<string, unknown>).password, json: true };
}

/** Path plus the receipt's transaction ids, so faults can be aimed at one purchase. */
async function subjectOfReceiptRequest(c: Context): Promise<string> {
	const { receipt } = await receiptDataOf(c);
	const found = receipt === undefined ? undefined : issued.get(receipt);
	return `${new URL(c.req.url).pathname} ${found?.transactionIds.join(" ") ?? ""}`.trim();
}

function dates(name: string, ms: number | null): Record<string, string> {
	if (ms === null) return {};
	const gmt = new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " Etc/GMT");
	const pst = new Date(ms - 8 * 3600_000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " America/Los_Angeles");
	return { [name]: gmt, [`${name}_ms`]: String(ms), [`${name}_pst`]: pst };
}

/** An in_app / latest_receipt_info entry: every value a string, as Apple writes them. */
function entry(t: AppleTransactionRecord): Record<string, string> {
	return {
		quantity: String(t.quantity),
		product_id: t.productId,
		transaction_id: t.transactionId,
		original_transaction_id: t.originalTransactionId,
		...dates("purchase_date", t.purchaseDate),
		...dates("original_purchase_date", t.originalPurchaseDate),
		...dates("expires_date", t.expiresDate),
		...(t.webOrderLineItemId === null ? {} : { web_order_line_item_id: t.webOrderLineItemId }),
		...(t.subscriptionGroupIdentifier === null ? {} : { subscription_group_identifier: t.subscriptionGroupIdentifier }),
		...(t.appAccountToken === null ? {} : { app_account_token: t.appAccountToken }),
		...(t.expiresDate === null ? {} : { is_trial_period: "false", is_in_intro_offer_period: "false" }),
		...dates("cancellation_date", t.revocationDate),
		...(t.revocationDate === null ? {} : { cancellation_reason: "0" }),
		in_app_ownership_type: "PURCHASED",
	};
}

export function appleReceipts() {
	const api = new Hono();

	api.post("/:environment{production|sandbox}/verifyReceipt", storeEndpoint("apple.verifyReceipt", subjectOfReceiptRequest), async (c) => {
		const asked = c.req.param("environment") === "production" ? "Production" : "Sandbox";
		const injected = injectedReceiptStatus(c, await subjectOfReceiptRequest(c));
		if (injected) return injected;
		const { receipt, password, json } = await receiptDataOf(c);
		if (!json) return c.json({ status: 21000 });
		if (receipt === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(receipt)) return c.json({ status: 21002 });
		const found = issued.get(receipt);
		// Receipts Apple did not sign, and Xcode's (signed on the device), cannot be authenticated.
		if (!found || found.environment === "Xcode") return c.json({ status: 21003 });
		if (found.environment === "Sandbox" && asked === "Production") return c.json({ status: 21007 });
		if (found.environment === "Production" && asked === "Sandbox") return c.json({ status: 21008 });
		const transactions = found.transactionIds.map((id) => appleTransactions.get(id)!);
		const subscriptions = [...appleTransactions.values()].filter(
			(t) => t.account === transactions[0]?.account && t.bundleId === found.bundleId && t.environment === found.environment && t.type === "Auto-Renewable Subscription",
		);
		const app = configOf(c).apple.apps.find((a) => a.bundleId === found.bundleId);
		// The shared secret is per app; Apple wants it for receipts with auto-renewable subscriptions and refuses a wrong one.
		const wrongSecret = app?.sharedSecret !== undefined && (password === undefined ? subscriptions.length > 0 : password !== app.sharedSecret);
		if (wrongSecret) return c.json({ status: 21004 });
		const now = Date.now();
		return c.json({
			status: 0,
			environment: found.environment,
			receipt: {
				receipt_type: found.environment === "Production" ? "Production" : "ProductionSandbox",
				adam_id: found.environment === "Production" ? (app?.appAppleId ?? 0) : 0,
				app_item_id: found.environment === "Production" ? (app?.appAppleId ?? 0) : 0,
				bundle_id: found.bundleId,
				application_version: "1",
				download_id: 0,
				version_external_identifier: 0,
				...dates("receipt_creation_date", now),
				...dates("request_date", now),
				...dates("original_purchase_date", transactions[0]?.originalPurchaseDate ?? now),
				original_application_version: "1.0",
				in_app: transactions.map(entry),
			},
			...(subscriptions.length > 0
				? {
						latest_receipt_info: subscriptions.sort((a, b) => (b.expiresDate ?? 0) - (a.expiresDate ?? 0)).map(entry),
						latest_receipt: receipt,
						pending_renewal_info: [],
					}
				: {}),
		});
	});

	return api;
}
