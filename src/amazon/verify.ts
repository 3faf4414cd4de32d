import { NotConfigured, Refusal, UnknownToStore } from "../answers";
import type { AppConfig, Config } from "../config/schema";
import type { Purchase, PurchaseKind, PurchaseState } from "../purchase";
import { AmazonRejected, AmazonRvsClient } from "./client";
import type { RvsReceipt } from "./schemas";

/**
 * Amazon Appstore purchases, as Amazon's Receipt Verification Service states them: asked of RVS, never believed from
 * the app. A purchase comes back in whatever state Amazon says it is in; the ledger decides what that grants.
 * Refusal is for what is no purchase at all (an unknown receipt, another user's, another product, a test purchase the
 * app does not accept); StoreUnreachable when no answer can be had; Misconfigured when Amazon refuses our secret.
 */

export interface AmazonEvidence {
	store: "amazon";
	productId: string;
	/** Receipt.getReceiptId() in the Appstore SDK. */
	receiptId: string;
	/** UserData.getUserId(): the Amazon customer, as this app sees them. RVS only answers for the receipt's own user. */
	amazonUserId: string;
}

export function amazonClientFor(app: AppConfig, config: Config): AmazonRvsClient {
	// Not a verdict on the purchase: the deployment lacks what it needs to ask Amazon, so never a "no".
	if (!app.amazon) throw new NotConfigured(`app ${app.id} is not configured for the Amazon Appstore (apps[].amazon in APPS_CONFIG)`, "store");
	return new AmazonRvsClient({
		appId: app.id,
		sharedSecret: app.amazon.sharedSecret,
		sandbox: app.amazon.sandbox,
		endpoint: config.endpoints.amazon,
		timeoutMs: config.storeTimeoutMs,
		quota: { appId: app.id, quotas: app.quotas },
	});
}

/**
 * What to ask RVS about; with a product id, the receipt must be for it (a claim), without one (or an empty one: a
 * notification, a check) any product.
 */
export interface AmazonLookup {
	receiptId: string;
	amazonUserId: string;
	productId?: string;
}

export async function verifyAmazonPurchase(app: AppConfig, config: Config, evidence: AmazonEvidence, now = Date.now()): Promise<Purchase> {
	return fetchAmazonPurchase(app, amazonClientFor(app, config), evidence, now);
}

/** Amazon's current word on a receipt, as a purchase. */
export async function fetchAmazonPurchase(app: AppConfig, client: AmazonRvsClient, lookup: AmazonLookup, now = Date.now()): Promise<Purchase> {
	let answer: Awaited<ReturnType<AmazonRvsClient["verifyReceiptId"]>>;
	try {
		answer = await client.verifyReceiptId(lookup.amazonUserId, lookup.receiptId);
	} catch (err) {
		if (err instanceof AmazonRejected) throw refusalFor(err);
		throw err;
	}
	const { value: receipt, raw } = answer;
	if (lookup.productId && lookup.productId !== receipt.productId && lookup.productId !== receipt.termSku) {
		throw new Refusal("product_mismatch", `the receipt is for product ${receipt.productId}, not ${lookup.productId}`, raw);
	}
	const purchase: Purchase = { ...purchaseFromReceipt(app, receipt, raw, { sandbox: client.sandbox, now }), storeUserId: lookup.amazonUserId };
	if (purchase.environment === "Sandbox" && !app.acceptSandbox) {
		throw new Refusal("sandbox_not_accepted", "this is a test purchase and the app does not accept test purchases", raw);
	}
	return purchase;
}

/** Amazon's "no", in the words apps match on. */
export function refusalFor(err: AmazonRejected): Refusal {
	switch (err.status) {
		// Remembered for a short while (src/quota/recall.ts): the same junk costs one RVS call, not one per request.
		case 400:
			return new UnknownToStore("invalid_purchase", `Amazon does not recognise this receipt id (RVS 400: ${err.reason})`, err.raw);
		case 497:
			return new UnknownToStore("invalid_purchase", `Amazon does not recognise this Amazon user id for the receipt (RVS 497: ${err.reason})`, err.raw);
		case 410:
			// Amazon: a receipt that is no longer valid is to be treated as cancelled.
			return new Refusal("canceled", `Amazon says the receipt is no longer valid (RVS 410: ${err.reason})`, err.raw);
	}
}

const KINDS: Record<RvsReceipt["productType"], PurchaseKind> = { ENTITLED: "non_consumable", CONSUMABLE: "consumable", SUBSCRIPTION: "subscription" };

/** Cancelled because a plan change replaced it with a new receipt (a tiered subscription's upgrade or downgrade). */
const REPLACED_BY_PLAN_CHANGE = 4;

/**
 * A receipt in the shared model. One-time purchases: a cancelled order (cancelDate) is refunded. Subscriptions keep
 * one receipt for every renewal: active until renewalDate, `canceled` (renewal off, still running) until a cancelDate
 * still to come, expired after it, in grace while Amazon retries a failed renewal (gracePeriodEndDate), and superseded
 * when a plan change replaced the receipt. Test purchases (testTransaction, Live App Testing, the RVS Cloud Sandbox)
 * are Sandbox.
 */
export function purchaseFromReceipt(app: AppConfig, r: RvsReceipt, raw: unknown, options: { sandbox: boolean; now: number }): Purchase {
	const { now } = options;
	const kind = KINDS[r.productType];
	const test = options.sandbox || r.testTransaction === true || r.betaProduct === true;
	const cancelDate = r.cancelDate ?? null;
	const renewalDate = r.renewalDate ?? null;
	const graceEnd = r.gracePeriodEndDate ?? null;
	let state: PurchaseState;
	let expiresAt: number | null = null;
	let graceExpiresAt: number | null = null;
	let willRenew: boolean | null = null;
	if (kind !== "subscription") {
		state = cancelDate === null ? "active" : "refunded";
	} else if (cancelDate !== null) {
		expiresAt = cancelDate;
		state = r.cancelReason === REPLACED_BY_PLAN_CHANGE ? "superseded" : cancelDate > now ? "canceled" : "expired";
		// Renewal off while it runs; once it has ended, there is nothing left to renew.
		willRenew = state === "canceled" ? false : null;
	} else if (graceEnd !== null && (renewalDate === null || renewalDate <= now)) {
		// The renewal is due and unpaid: Amazon keeps the subscription in grace while it retries the payment.
		state = "in_grace_period";
		expiresAt = renewalDate ?? graceEnd;
		graceExpiresAt = graceEnd;
		willRenew = r.autoRenewing ?? true;
	} else {
		state = "active";
		expiresAt = renewalDate;
		willRenew = r.autoRenewing ?? (renewalDate === null ? null : true);
	}
	return {
		appId: app.id,
		store: "amazon",
		environment: test ? "Sandbox" : "Production",
		transactionId: r.receiptId,
		originalTransactionId: null,
		// One receipt for the whole subscription; the ledger moves a plan change's new receipt under the one it replaced.
		subscriptionId: kind === "subscription" ? r.receiptId : null,
		linkedTransactionId: null,
		orderId: null,
		productId: r.productId,
		kind,
		purchasedAt: r.purchaseDate,
		expiresAt,
		graceExpiresAt,
		willRenew,
		state,
		quantity: r.quantity ?? 1,
		// RVS states no price.
		price: null,
		currency: null,
		// Amazon's fulfilment is the app's notifyFulfillment(): nothing for a server to acknowledge.
		needsAcknowledgement: false,
		asOf: now,
		raw,
	};
}
