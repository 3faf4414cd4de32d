import type { AppConfig, Config } from "../config/schema";
import type { Purchase, PurchaseKind, PurchaseState } from "../purchase";
import { NotConfigured, Refusal, UnknownToStore } from "../answers";
import { GooglePlayClient, GoogleRejected } from "./client";
import type { ProductPurchase, SubscriptionPurchaseV2 } from "./schemas";

/**
 * Google Play purchases, as Google states them: asked of the Play Developer API, never believed from the app (the
 * app's JSON only chooses which endpoint to ask). A purchase comes back in whatever state Google says it is in;
 * the ledger decides what that grants. Refusal is for what is no purchase at all (unknown token, another product,
 * still pending, a test purchase the app does not accept); StoreUnreachable when no answer can be had.
 */

export interface GoogleEvidence {
	store: "google_play";
	productId: string;
	purchaseToken: string;
	/** What the app says it is; the app's product catalogue wins when it names the product. */
	typeHint?: "product" | "subscription";
	/**
	 * What the app's own purchase JSON (Play Billing's getOriginalJson) says, when it sent one. Not evidence, but
	 * when it contradicts the claim there is nothing to ask Google about.
	 */
	appSays?: { packageName?: string | undefined; productId?: string | undefined };
}

export function googleClientFor(app: AppConfig, config: Config): GooglePlayClient {
	// Not a verdict on the purchase: the deployment lacks what it needs to ask Google, so never a "no".
	if (!app.google) throw new NotConfigured(`app ${app.id} is not configured for Google Play (apps[].google in APPS_CONFIG)`, "store");
	return new GooglePlayClient({
		packageName: app.google.packageName,
		serviceAccount: app.google.serviceAccount,
		endpoints: config.endpoints,
		timeoutMs: config.storeTimeoutMs,
		quota: { appId: app.id, quotas: app.quotas },
	});
}

export function googlePurchaseType(app: AppConfig, productId: string, typeHint?: "product" | "subscription"): "product" | "subscription" {
	const listed = app.products[productId];
	if (listed) return listed === "subscription" ? "subscription" : "product";
	return typeHint ?? "product";
}

/** What to ask Google about: a one-time product needs its product id; a subscription token says its own. */
export type GoogleLookup = { type: "product"; productId: string; token: string } | { type: "subscription"; token: string; productId?: string };

/** Verifies evidence a caller sent: the app's own JSON may refuse early, then Google's answer must match the claim. */
export async function verifyGooglePurchase(app: AppConfig, config: Config, evidence: GoogleEvidence, now = Date.now()): Promise<Purchase> {
	const client = googleClientFor(app, config);
	const type = googleLookupOf(app, evidence);
	return fetchGooglePurchase(app, client, { type, productId: evidence.productId, token: evidence.purchaseToken }, now);
}

/**
 * What Google would be asked about this evidence, without asking: the endpoint (one-time product or subscription).
 * The app's own JSON contradicting the claim is refused here, before anyone is asked.
 */
export function googleLookupOf(app: AppConfig, evidence: GoogleEvidence): "product" | "subscription" {
	if (!app.google) throw new NotConfigured(`app ${app.id} is not configured for Google Play (apps[].google in APPS_CONFIG)`, "store");
	const { appSays } = evidence;
	if (appSays?.packageName !== undefined && appSays.packageName !== app.google.packageName) {
		throw new Refusal("app_mismatch", `the purchase is for package ${appSays.packageName}, not this app's`);
	}
	if (appSays?.productId !== undefined && appSays.productId !== evidence.productId) {
		throw new Refusal("product_mismatch", `the purchase JSON is for product ${appSays.productId}, not ${evidence.productId}`);
	}
	return googlePurchaseType(app, evidence.productId, evidence.typeHint);
}

/**
 * Google's current word on a purchase token. With a product id, a subscription must include that product (the
 * claim); without one (a notification), its line item that runs longest names it.
 */
export async function fetchGooglePurchase(app: AppConfig, client: GooglePlayClient, lookup: GoogleLookup, now = Date.now()): Promise<Purchase> {
	try {
		if (lookup.type === "subscription") {
			const { value, raw } = await client.getSubscription(lookup.token);
			return judgeSubscription(app, lookup, value, raw, now);
		}
		const { value, raw } = await client.getProduct(lookup.productId, lookup.token);
		return judgeProduct(app, lookup, value, raw, now);
	} catch (err) {
		if (err instanceof GoogleRejected) {
			const what = lookup.productId === undefined ? "" : ` and product ${lookup.productId}`;
			throw new UnknownToStore("invalid_purchase", `Google does not recognise this purchase token for package ${client.packageName}${what}`, err.raw);
		}
		throw err;
	}
}

function judgeProduct(app: AppConfig, lookup: { productId: string; token: string }, p: ProductPurchase, raw: unknown, now: number): Purchase {
	if (p.productId !== undefined && p.productId !== lookup.productId) {
		throw new Refusal("product_mismatch", `the token is for product ${p.productId}, not ${lookup.productId}`, raw);
	}
	if (p.purchaseState === 2) throw new Refusal("pending", "the purchase is pending: payment has not completed", raw);
	if (p.purchaseState !== 0 && p.purchaseState !== 1) throw new Refusal("invalid_purchase", `unknown purchaseState ${p.purchaseState}`, raw);
	const test = p.purchaseType === 0;
	if (test && !app.acceptSandbox) throw new Refusal("sandbox_not_accepted", "this is a test purchase and the app does not accept test purchases", raw);
	const kind: PurchaseKind = app.products[lookup.productId] === "consumable" ? "consumable" : "non_consumable";
	// 1: Google canceled (voided) it.
	const state: PurchaseState = p.purchaseState === 1 ? "canceled" : p.consumptionState === 1 ? "consumed" : "active";
	return {
		appId: app.id,
		store: "google_play",
		environment: test ? "Sandbox" : "Production",
		transactionId: lookup.token,
		originalTransactionId: null,
		subscriptionId: null,
		linkedTransactionId: null,
		orderId: p.orderId ?? null,
		productId: lookup.productId,
		kind,
		purchasedAt: Number(p.purchaseTimeMillis),
		expiresAt: null,
		graceExpiresAt: null,
		willRenew: null,
		state,
		quantity: p.quantity ?? 1,
		price: null,
		currency: null,
		needsAcknowledgement: p.acknowledgementState === 0 && state === "active",
		asOf: now,
		raw,
	};
}

const SUBSCRIPTION_STATES: Record<string, PurchaseState> = {
	SUBSCRIPTION_STATE_ACTIVE: "active",
	SUBSCRIPTION_STATE_IN_GRACE_PERIOD: "in_grace_period",
	SUBSCRIPTION_STATE_CANCELED: "canceled",
	SUBSCRIPTION_STATE_EXPIRED: "expired",
	SUBSCRIPTION_STATE_ON_HOLD: "on_hold",
	SUBSCRIPTION_STATE_PAUSED: "paused",
};

function judgeSubscription(app: AppConfig, lookup: { token: string; productId?: string }, s: SubscriptionPurchaseV2, raw: unknown, now: number): Purchase {
	const items = lookup.productId === undefined ? s.lineItems : s.lineItems.filter((item) => item.productId === lookup.productId);
	if (items.length === 0) {
		const products = s.lineItems.map((item) => item.productId).join(", ");
		throw new Refusal("product_mismatch", `the subscription is for ${products}, not ${lookup.productId}`, raw);
	}
	// Never paid for: nothing to record as a purchase.
	if (s.subscriptionState === "SUBSCRIPTION_STATE_PENDING") throw new Refusal("pending", "the subscription is pending: payment has not completed", raw);
	if (s.subscriptionState === "SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED") throw new Refusal("canceled", "the pending subscription purchase was canceled before it was paid", raw);
	const state = SUBSCRIPTION_STATES[s.subscriptionState];
	if (!state) throw new Refusal("invalid_purchase", `unknown subscriptionState ${s.subscriptionState}`, raw);
	const test = s.testPurchase !== undefined;
	if (test && !app.acceptSandbox) throw new Refusal("sandbox_not_accepted", "this is a test purchase and the app does not accept test purchases", raw);
	// The line item that runs longest stands for the subscription.
	const expiry = (item: (typeof items)[number]) => (item.expiryTime ? Date.parse(item.expiryTime) : Number.NaN);
	const main = items.reduce((a, b) => (expiry(b) > expiry(a) ? b : a));
	const expiresAt = Number.isNaN(expiry(main)) ? null : expiry(main);
	const price = main.autoRenewingPlan?.recurringPrice;
	return {
		appId: app.id,
		store: "google_play",
		environment: test ? "Sandbox" : "Production",
		transactionId: lookup.token,
		originalTransactionId: null,
		// The ledger follows linkedPurchaseToken to the subscription's first token; until then, this token is its own.
		subscriptionId: lookup.token,
		linkedTransactionId: s.linkedPurchaseToken ?? null,
		orderId: main.latestSuccessfulOrderId ?? s.latestOrderId ?? null,
		productId: lookup.productId ?? main.productId,
		kind: "subscription",
		purchasedAt: s.startTime ? Date.parse(s.startTime) : now,
		expiresAt,
		// Google extends a line item's expiry to the end of the grace period while the subscription is in it.
		graceExpiresAt: state === "in_grace_period" ? expiresAt : null,
		willRenew: main.autoRenewingPlan?.autoRenewEnabled ?? (main.autoRenewingPlan === undefined ? false : null),
		state,
		quantity: 1,
		price: price ? milliUnits(price.units, price.nanos) : null,
		currency: price?.currencyCode ?? null,
		needsAcknowledgement: s.acknowledgementState === "ACKNOWLEDGEMENT_STATE_PENDING",
		asOf: now,
		raw,
	};
}

/** Google's Money (units and nanos) as milli-units, the unit Apple states prices in. */
function milliUnits(units: string | undefined, nanos: number | undefined): number {
	return Number(units ?? 0) * 1000 + Math.round((nanos ?? 0) / 1e6);
}
