import * as z from "zod";

/**
 * The parts of Amazon's answers we act on (https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-android-apps.html).
 * Anything else Amazon adds passes through untouched in `raw`; a change to these fields fails loudly as "store
 * unreachable", never as a half-read "yes".
 */

/** Milliseconds since the epoch; Amazon sends null for a date that does not apply. */
const millis = z.number().int().nonnegative();

/** verifyReceiptId → the receipt (HTTP 200). */
export const RvsReceipt = z.looseObject({
	receiptId: z.string().min(1),
	/** ENTITLED: a one-time entitlement; CONSUMABLE; SUBSCRIPTION. */
	productType: z.enum(["ENTITLED", "CONSUMABLE", "SUBSCRIPTION"]),
	/** The SKU; for a subscription, its parent SKU (termSku names the term bought). */
	productId: z.string().min(1),
	/** For a subscription, when it was first bought (not the latest renewal). */
	purchaseDate: millis,
	/** Subscriptions: when it next renews; null when it is not set to renew. */
	renewalDate: millis.nullish(),
	/**
	 * Null while the receipt is valid. A one-time purchase: when the order was cancelled. A subscription: when it
	 * expired or was cancelled; with renewal turned off, the date the renewal would have happened.
	 */
	cancelDate: millis.nullish(),
	/** null: not cancelled; 0: reason not yet known; 1: by the customer; 2: by Amazon (an unpaid renewal, customer service); 4: replaced by a plan change. */
	cancelReason: z.number().int().nullish(),
	/** Bought in Amazon's testing (App Tester, the RVS Cloud Sandbox). */
	testTransaction: z.boolean().nullish(),
	/** Bought through Live App Testing. */
	betaProduct: z.boolean().nullish(),
	quantity: z.number().int().positive().nullish(),
	term: z.string().nullish(),
	termSku: z.string().nullish(),
	autoRenewing: z.boolean().nullish(),
	/** Set while a subscription whose renewal payment failed is in its grace period. */
	gracePeriodEndDate: millis.nullish(),
	freeTrialEndDate: millis.nullish(),
});
export type RvsReceipt = z.infer<typeof RvsReceipt>;

/** Amazon's error body: {"message": "...", "status": false}. */
export const RvsError = z.looseObject({ message: z.string().optional() });
