import type { AppConfig, Config } from "../config/schema";
import { type Purchase, type PurchaseKind, type PurchaseState } from "../purchase";
import { NotConfigured, Refusal } from "../answers";
import { GooglePlayClient, GoogleRejected } from "./client";
import type { ProductPurchase, SubscriptionPurchaseV2 } from "./schemas";

/**
 * Verifies a Google Play purchase token by asking Google, never by believing the app: the client's JSON
 * only chooses which endpoint to ask. Returns the normalized purchase, or throws Refusal (a reasoned "no")
 * or StoreUnreachable (no answer to be had).
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
	if (!app.google) throw new NotConfigured(`app ${app.id} is not configured for Google Play (apps[].google in APPS_CONFIG)`);
	return new GooglePlayClient({
		packageName: app.google.packageName,
		serviceAccount: app.google.serviceAccount,
		endpoints: config.endpoints,
		timeoutMs: config.storeTimeoutMs,
	});
}

export function googlePurchaseType(app: AppConfig, claim: GoogleEvidence): "product" | "subscription" {
	const listed = app.products[claim.productId];
	if (listed) return listed === "subscription" ? "subscription" : "product";
	return claim.typeHint ?? "product";
}

export async function verifyGooglePurchase(app: AppConfig, config: Config, claim: GoogleEvidence, now = Date.now()): Promise<Purchase> {
	const client = googleClientFor(app, config);
	const { appSays } = claim;
	if (appSays?.packageName !== undefined && appSays.packageName !== client.packageName) {
		throw new Refusal("app_mismatch", `the purchase is for package ${appSays.packageName}, not this app's`);
	}
	if (appSays?.productId !== undefined && appSays.productId !== claim.productId) {
		throw new Refusal("product_mismatch", `the purchase JSON is for product ${appSays.productId}, not ${claim.productId}`);
	}
	try {
		if (googlePurchaseType(app, claim) === "subscription") {
			const { value, raw } = await client.getSubscription(claim.purchaseToken);
			return judgeSubscription(app, claim, value, raw, now);
		}
		const { value, raw } = await client.getProduct(claim.productId, claim.purchaseToken);
		return judgeProduct(app, claim, value, raw);
	} catch (err) {
		if (err instanceof GoogleRejected) {
			throw new Refusal("invalid_purchase", `Google does not recognise this purchase token for package ${app.google?.packageName} and product ${claim.productId}`, err.raw);
		}
		throw err;
	}
}

function judgeProduct(app: AppConfig, claim: GoogleEvidence, p: ProductPurchase, raw: unknown): Purchase {
	if (p.productId !== undefined && p.productId !== claim.productId) {
		throw new Refusal("product_mismatch", `the token is for product ${p.productId}, not ${claim.productId}`, raw);
	}
	if (p.purchaseState === 1) throw new Refusal("canceled", "the purchase was canceled", raw, { store: "google_play", transactionId: claim.purchaseToken, state: "canceled" });
	if (p.purchaseState === 2) throw new Refusal("pending", "the purchase is pending: payment has not completed", raw);
	if (p.purchaseState !== 0) throw new Refusal("invalid_purchase", `unknown purchaseState ${p.purchaseState}`, raw);
	const test = p.purchaseType === 0;
	if (test && !app.acceptSandbox) throw new Refusal("sandbox_not_accepted", "this is a test purchase and the app does not accept test purchases", raw);
	const listed = app.products[claim.productId];
	const kind: PurchaseKind = listed === "consumable" ? "consumable" : "non_consumable";
	return {
		appId: app.id,
		store: "google_play",
		environment: test ? "Sandbox" : "Production",
		transactionId: claim.purchaseToken,
		originalTransactionId: null,
		orderId: p.orderId ?? null,
		productId: claim.productId,
		kind,
		purchasedAt: Number(p.purchaseTimeMillis),
		expiresAt: null,
		state: p.consumptionState === 1 ? "consumed" : "active",
		quantity: p.quantity ?? 1,
		needsAcknowledgement: p.acknowledgementState === 0,
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
	SUBSCRIPTION_STATE_PENDING: "pending",
	SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED: "canceled",
};

function judgeSubscription(app: AppConfig, claim: GoogleEvidence, s: SubscriptionPurchaseV2, raw: unknown, now: number): Purchase {
	const items = s.lineItems.filter((item) => item.productId === claim.productId);
	if (items.length === 0) {
		const products = s.lineItems.map((item) => item.productId).join(", ");
		throw new Refusal("product_mismatch", `the subscription is for ${products}, not ${claim.productId}`, raw);
	}
	const state = SUBSCRIPTION_STATES[s.subscriptionState];
	if (!state) throw new Refusal("invalid_purchase", `unknown subscriptionState ${s.subscriptionState}`, raw);
	if (state === "pending") throw new Refusal("pending", "the subscription is pending: payment has not completed", raw);
	const expiries = items.map((item) => (item.expiryTime ? Date.parse(item.expiryTime) : Number.NaN)).filter((t) => !Number.isNaN(t));
	const expiresAt = expiries.length > 0 ? Math.max(...expiries) : null;
	if (state === "expired" || expiresAt === null || expiresAt <= now) {
		throw new Refusal("expired", "the subscription has expired", raw, { store: "google_play", transactionId: claim.purchaseToken, state: "expired" });
	}
	if (state === "on_hold" || state === "paused") throw new Refusal("inactive", `the subscription is ${state.replace("_", " ")}: payment or resumption is due`, raw);
	if (s.subscriptionState === "SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED") throw new Refusal("canceled", "the pending subscription purchase was canceled", raw);
	const test = s.testPurchase !== undefined;
	if (test && !app.acceptSandbox) throw new Refusal("sandbox_not_accepted", "this is a test purchase and the app does not accept test purchases", raw);
	return {
		appId: app.id,
		store: "google_play",
		environment: test ? "Sandbox" : "Production",
		transactionId: claim.purchaseToken,
		originalTransactionId: s.linkedPurchaseToken ?? null,
		orderId: items[0]?.latestSuccessfulOrderId ?? s.latestOrderId ?? null,
		productId: claim.productId,
		kind: "subscription",
		purchasedAt: s.startTime ? Date.parse(s.startTime) : now,
		expiresAt,
		state,
		quantity: 1,
		needsAcknowledgement: s.acknowledgementState === "ACKNOWLEDGEMENT_STATE_PENDING",
		raw,
	};
}
