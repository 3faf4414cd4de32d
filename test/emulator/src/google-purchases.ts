import * as z from "zod";
import { nonEmptyString, positiveWhole } from "./admin-body";
import { randomDigits, randomToken } from "./random";

/** A purchase as the emulator holds it; rendered as ProductPurchase or SubscriptionPurchaseV2 on request. */
export interface GooglePurchase {
	token: string;
	packageName: string;
	productId: string;
	type: "product" | "subscription";
	orderId: string;
	purchaseTime: number;
	/** product: purchased | canceled | pending. subscription: active | canceled | expired | in_grace_period | on_hold | paused | pending */
	state: string;
	test: boolean;
	acknowledged: boolean;
	consumed: boolean;
	quantity: number;
	expiryTime: number | null;
	/** Google forgets tokens long expired: such a token answers 410. */
	gone: boolean;
	obfuscatedAccountId: string | null;
	/** Subscriptions: the earlier purchase this one upgrades, downgrades or resubscribes (SubscriptionPurchaseV2). */
	linkedPurchaseToken: string | null;
	/** Refunded or charged back: it is in voidedpurchases.list (google-voided.ts). */
	voided: boolean;
}

export const googlePurchases = new Map<string, GooglePurchase>();

const PRODUCT_STATES: Record<string, number> = { purchased: 0, canceled: 1, pending: 2 };
const SUBSCRIPTION_STATES: Record<string, string> = {
	active: "SUBSCRIPTION_STATE_ACTIVE",
	canceled: "SUBSCRIPTION_STATE_CANCELED",
	expired: "SUBSCRIPTION_STATE_EXPIRED",
	in_grace_period: "SUBSCRIPTION_STATE_IN_GRACE_PERIOD",
	on_hold: "SUBSCRIPTION_STATE_ON_HOLD",
	paused: "SUBSCRIPTION_STATE_PAUSED",
	pending: "SUBSCRIPTION_STATE_PENDING",
};

/** Which states a purchase of each type can be in. */
export function statesFor(type: GooglePurchase["type"]): string[] {
	return Object.keys(type === "product" ? PRODUCT_STATES : SUBSCRIPTION_STATES);
}

/** POST /_emulator/google/purchases */
export const CreateGooglePurchase = z
	.object({
		packageName: nonEmptyString,
		productId: nonEmptyString,
		type: z.enum(["product", "subscription"], { error: 'must be "product" or "subscription"' }).optional(),
		state: z.string().optional(),
		test: z.boolean().optional(),
		acknowledged: z.boolean().optional(),
		quantity: positiveWhole.optional(),
		/** Subscriptions: seconds from now until expiry (negative: already expired). Default 30 days. */
		expiresInSeconds: z.number().optional(),
		gone: z.boolean().optional(),
		obfuscatedAccountId: z.string().optional(),
		token: nonEmptyString.optional(),
		/** Subscriptions: the purchase token this one replaces (an upgrade, downgrade or resubscribe). */
		linkedPurchaseToken: nonEmptyString.optional(),
		/** SUBSCRIPTION_PURCHASED / ONE_TIME_PRODUCT_PURCHASED: true sends it, false only records it; none without. */
		notify: z.boolean().optional(),
	})
	.superRefine((input, ctx) => {
		const type = input.type ?? "product";
		if (input.state !== undefined && !statesFor(type).includes(input.state)) {
			ctx.addIssue({ code: "custom", path: ["state"], message: `must be one of ${statesFor(type).join(", ")} for a ${type}` });
		}
		if (input.linkedPurchaseToken !== undefined && type !== "subscription") {
			ctx.addIssue({ code: "custom", path: ["linkedPurchaseToken"], message: "only subscriptions link to an earlier purchase" });
		}
	});
export type CreateGooglePurchase = z.output<typeof CreateGooglePurchase>;

const VOIDED = "must be a whole number from 0 to 7 (see voidedpurchases.list)";
const voidedCode = z.number({ error: VOIDED }).int({ error: VOIDED }).min(0, { error: VOIDED }).max(7, { error: VOIDED });

/** POST /_emulator/google/purchases/{token}: a refund, an expiry, an acknowledgement seen elsewhere (google-changes.ts). */
export const UpdateGooglePurchase = z.object({
	state: z.string().optional(),
	expiresInSeconds: z.number().optional(),
	acknowledged: z.boolean().optional(),
	/** Void it: refunded (or charged back), listed by voidedpurchases.list. */
	refund: z.literal(true, { error: "must be true (a refund cannot be taken back)" }).optional(),
	/** With refund: who voided it (0 user, 1 developer, 2 Google) and why (0-7); default 0 and 1 (remorse). */
	voidedSource: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "must be 0 (user), 1 (developer) or 2 (Google)" }).optional(),
	voidedReason: voidedCode.optional(),
	/** Send the RTDN for the change. Default true. */
	notify: z.boolean().optional(),
});
export type UpdateGooglePurchase = z.output<typeof UpdateGooglePurchase>;

export function createGooglePurchase(input: CreateGooglePurchase): GooglePurchase {
	const type = input.type ?? "product";
	const state = input.state ?? (type === "product" ? "purchased" : "active");
	const now = Date.now();
	const purchase: GooglePurchase = {
		token: input.token ?? randomToken(96),
		packageName: input.packageName,
		productId: input.productId,
		type,
		orderId: `GPA.${randomDigits(4)}-${randomDigits(4)}-${randomDigits(4)}-${randomDigits(5)}`,
		purchaseTime: now,
		state,
		test: input.test ?? false,
		acknowledged: input.acknowledged ?? false,
		consumed: false,
		quantity: input.quantity ?? 1,
		expiryTime: type === "subscription" ? now + (input.expiresInSeconds ?? 30 * 24 * 3600) * 1000 : null,
		gone: input.gone ?? false,
		obfuscatedAccountId: input.obfuscatedAccountId ?? null,
		linkedPurchaseToken: input.linkedPurchaseToken ?? null,
		voided: false,
	};
	googlePurchases.set(purchase.token, purchase);
	return purchase;
}

/** purchases.products.get: the ProductPurchase resource. */
export function productPurchaseResource(p: GooglePurchase) {
	return {
		kind: "androidpublisher#productPurchase",
		purchaseTimeMillis: String(p.purchaseTime),
		purchaseState: PRODUCT_STATES[p.state],
		consumptionState: p.consumed ? 1 : 0,
		developerPayload: "",
		orderId: p.orderId,
		// Set only for non-standard purchases; 0 = test (license tester).
		...(p.test ? { purchaseType: 0 } : {}),
		acknowledgementState: p.acknowledged ? 1 : 0,
		productId: p.productId,
		quantity: p.quantity,
		regionCode: "US",
		...(p.obfuscatedAccountId ? { obfuscatedExternalAccountId: p.obfuscatedAccountId } : {}),
	};
}

/** purchases.subscriptionsv2.get: the SubscriptionPurchaseV2 resource. */
export function subscriptionPurchaseV2Resource(p: GooglePurchase) {
	const autoRenew = p.state === "active" || p.state === "in_grace_period" || p.state === "on_hold";
	return {
		kind: "androidpublisher#subscriptionPurchaseV2",
		regionCode: "US",
		...(p.state === "pending" ? {} : { startTime: new Date(p.purchaseTime).toISOString() }),
		subscriptionState: SUBSCRIPTION_STATES[p.state],
		latestOrderId: p.orderId,
		...(p.linkedPurchaseToken ? { linkedPurchaseToken: p.linkedPurchaseToken } : {}),
		acknowledgementState: p.acknowledged ? "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED" : "ACKNOWLEDGEMENT_STATE_PENDING",
		...(p.test ? { testPurchase: {} } : {}),
		...(p.state === "canceled" ? { canceledStateContext: { userInitiatedCancellation: { cancelTime: new Date().toISOString() } } } : {}),
		...(p.obfuscatedAccountId ? { externalAccountIdentifiers: { obfuscatedExternalAccountId: p.obfuscatedAccountId } } : {}),
		lineItems: [
			{
				productId: p.productId,
				expiryTime: new Date(p.expiryTime ?? p.purchaseTime).toISOString(),
				latestSuccessfulOrderId: p.orderId,
				autoRenewingPlan: { autoRenewEnabled: autoRenew },
				offerDetails: { basePlanId: "monthly" },
			},
		],
	};
}

/** The purchase JSON the Play Billing Library hands the app (Purchase.getOriginalJson()). */
export function clientPurchaseJson(p: GooglePurchase): string {
	return JSON.stringify({
		orderId: p.orderId,
		packageName: p.packageName,
		productId: p.productId,
		purchaseTime: p.purchaseTime,
		purchaseState: p.state === "pending" ? 4 : 0,
		purchaseToken: p.token,
		quantity: p.quantity,
		...(p.type === "subscription" ? { autoRenewing: p.state === "active" } : {}),
		acknowledged: p.acknowledged,
	});
}
