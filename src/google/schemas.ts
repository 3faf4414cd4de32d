import * as z from "zod";

/**
 * The parts of Google's answers we act on. Anything else Google adds passes through untouched in `raw`;
 * a change to these fields fails loudly as "store unreachable", never as a half-read "yes".
 */

/** purchases.products.get → ProductPurchase */
export const ProductPurchase = z.looseObject({
	purchaseTimeMillis: z.string().regex(/^\d+$/),
	/** 0 purchased, 1 canceled, 2 pending */
	purchaseState: z.number().int(),
	/** 0 yet to be consumed, 1 consumed */
	consumptionState: z.number().int().optional(),
	orderId: z.string().optional(),
	/** Set only for non-standard purchases: 0 test (license tester), 1 promo, 2 rewarded. */
	purchaseType: z.number().int().optional(),
	/** 0 yet to be acknowledged, 1 acknowledged */
	acknowledgementState: z.number().int().optional(),
	productId: z.string().optional(),
	quantity: z.number().int().positive().optional(),
	obfuscatedExternalAccountId: z.string().optional(),
});
export type ProductPurchase = z.infer<typeof ProductPurchase>;

const LineItem = z.looseObject({
	productId: z.string(),
	expiryTime: z.string().optional(),
	latestSuccessfulOrderId: z.string().optional(),
	autoRenewingPlan: z
		.looseObject({
			autoRenewEnabled: z.boolean().optional(),
			/** Google's Money: units (an int64 as a string), nanos, ISO 4217 code. */
			recurringPrice: z.looseObject({ currencyCode: z.string().optional(), units: z.string().optional(), nanos: z.number().int().optional() }).optional(),
		})
		.optional(),
});

/** purchases.subscriptionsv2.get → SubscriptionPurchaseV2 */
export const SubscriptionPurchaseV2 = z.looseObject({
	startTime: z.string().optional(),
	subscriptionState: z.string(),
	latestOrderId: z.string().optional(),
	linkedPurchaseToken: z.string().optional(),
	acknowledgementState: z.string().optional(),
	testPurchase: z.looseObject({}).optional(),
	lineItems: z.array(LineItem).min(1),
	externalAccountIdentifiers: z.looseObject({ obfuscatedExternalAccountId: z.string().optional() }).optional(),
});
export type SubscriptionPurchaseV2 = z.infer<typeof SubscriptionPurchaseV2>;

/** purchases.voidedpurchases.list → VoidedPurchasesListResponse */
export const VoidedPurchasesResponse = z.looseObject({
	voidedPurchases: z
		.array(
			z.looseObject({
				purchaseToken: z.string().min(1),
				orderId: z.string().optional(),
				voidedTimeMillis: z.string().regex(/^\d+$/),
				/** 0 user, 1 developer, 2 Google */
				voidedSource: z.number().int().optional(),
				/** 0 other, 1 remorse, 2 not received, 3 defective, 4 accidental purchase, 5 fraud, 6 friendly fraud, 7 chargeback */
				voidedReason: z.number().int().optional(),
			}),
		)
		.default([]),
	tokenPagination: z.looseObject({ nextPageToken: z.string().optional() }).optional(),
});

/** Google's standard error envelope. */
export const GoogleErrorEnvelope = z.object({
	error: z.looseObject({
		code: z.number().optional(),
		message: z.string().optional(),
		status: z.string().optional(),
		errors: z.array(z.looseObject({ reason: z.string().optional(), domain: z.string().optional() })).optional(),
		/** google.rpc details, e.g. RetryInfo {retryDelay: "12s"} on a quota error. */
		details: z.array(z.looseObject({ "@type": z.string().optional(), retryDelay: z.string().optional() })).optional(),
	}),
});
export type GoogleErrorEnvelope = z.infer<typeof GoogleErrorEnvelope>;
