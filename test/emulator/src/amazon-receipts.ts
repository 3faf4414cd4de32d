import * as z from "zod";
import { nonEmptyString, positiveWhole } from "./admin-body";
import { randomToken } from "./random";

/**
 * Amazon Appstore receipts as the emulator holds them, rendered as RVS answers them
 * (https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-android-apps.html). A subscription keeps one receipt
 * for every renewal: renewalDate moves on, cancelDate ends it. Changes and the Real-time Notification each sends:
 * amazon-changes.ts.
 */
export interface AmazonReceipt {
	receiptId: string;
	packageName: string;
	/** The Amazon customer (UserData.getUserId()): RVS answers only for them. */
	userId: string;
	/** The SKU; for a subscription, the parent SKU. */
	productId: string;
	productType: "ENTITLED" | "CONSUMABLE" | "SUBSCRIPTION";
	/** Subscriptions: the term SKU bought, and its term. */
	termSku: string | null;
	term: string | null;
	/** Made by App Tester: only the RVS Cloud Sandbox knows it. */
	sandbox: boolean;
	testTransaction: boolean;
	betaProduct: boolean;
	purchaseDate: number;
	renewalDate: number | null;
	cancelDate: number | null;
	/** 0 not yet known, 1 by the customer, 2 by Amazon (customer service, an unpaid renewal), 4 replaced by a plan change. */
	cancelReason: number | null;
	autoRenewing: boolean;
	gracePeriodEndDate: number | null;
	quantity: number;
	/** RVS answers 410: the receipt is no longer valid. */
	gone: boolean;
}

export const amazonReceipts = new Map<string, AmazonReceipt>();

const TYPES = { entitlement: "ENTITLED", consumable: "CONSUMABLE", subscription: "SUBSCRIPTION" } as const;
const DAY_MS = 24 * 3600 * 1000;
/** A monthly term, as the emulator's subscriptions have. */
export const TERM_MS = 30 * DAY_MS;

const SECONDS = "must be a number of seconds";

/** POST /_emulator/amazon/receipts */
export const CreateAmazonReceipt = z
	.object({
		packageName: nonEmptyString,
		productId: nonEmptyString,
		type: z.enum(["entitlement", "consumable", "subscription"], { error: 'must be "entitlement", "consumable" or "subscription"' }).default("entitlement"),
		/** The Amazon user; a new one when left out. */
		userId: nonEmptyString.optional(),
		/** Made by App Tester: verified by the RVS Cloud Sandbox only (testTransaction true). */
		sandbox: z.boolean().default(false),
		/** A test purchase in production (testTransaction true), or one through Live App Testing (betaProduct true). */
		test: z.boolean().default(false),
		beta: z.boolean().default(false),
		/** Subscriptions: seconds until the next renewal (default one 30-day term). */
		expiresInSeconds: z.number({ error: SECONDS }).optional(),
		autoRenew: z.boolean().default(true),
		termSku: nonEmptyString.optional(),
		quantity: positiveWhole.optional(),
		/** Subscriptions: the receipt of the same customer's subscription an immediate plan change replaces. */
		replaces: nonEmptyString.optional(),
		/** The Real-time Notification for the purchase: true sends it, false records it alone; none without. */
		notify: z.boolean().optional(),
	})
	.superRefine((input, ctx) => {
		if (input.type !== "subscription") {
			for (const field of ["expiresInSeconds", "termSku", "replaces"] as const) {
				if (input[field] !== undefined) ctx.addIssue({ code: "custom", path: [field], message: "only for subscriptions" });
			}
		}
	});
export type CreateAmazonReceipt = z.output<typeof CreateAmazonReceipt>;

/** POST /_emulator/amazon/receipts/{receiptId}: what Amazon, its customer service or the customer did since (amazon-changes.ts). */
export const UpdateAmazonReceipt = z.object({
	/** The order is cancelled: a one-time purchase is refunded, a subscription ends now. */
	cancel: z.literal(true, { error: "must be true" }).optional(),
	/** As cancel, by Amazon's customer service at the customer's request (cancelReason 2). */
	refund: z.literal(true, { error: "must be true" }).optional(),
	/** Subscriptions: the customer turns renewal off (it runs until its renewal date) or on again. */
	autoRenew: z.boolean().optional(),
	/** Subscriptions: the next term is paid; renewalDate moves on by a term (or to `expiresInSeconds` from now). */
	renew: z.literal(true, { error: "must be true" }).optional(),
	expiresInSeconds: z.number({ error: SECONDS }).positive({ error: "must be positive: use expire to end it" }).optional(),
	/** Subscriptions: the renewal payment failed and Amazon retries for this many seconds; false: the customer fixed it. */
	gracePeriod: z.union([z.object({ seconds: z.number({ error: SECONDS }).positive({ error: SECONDS }) }), z.literal(false)], { error: 'must be {"seconds": n} or false' }).optional(),
	/** Subscriptions: it ends now (renewal off and the term over, or an unpaid renewal after its grace). */
	expire: z.literal(true, { error: "must be true" }).optional(),
	/** RVS answers 410 for it from now on. */
	gone: z.literal(true, { error: "must be true" }).optional(),
	/** Send the Real-time Notification for the change. Default true. */
	notify: z.boolean().optional(),
});
export type UpdateAmazonReceipt = z.output<typeof UpdateAmazonReceipt>;

/** An Amazon user id: opaque, base64 with `=` (as in Amazon's examples), so it needs encoding in a URL path. */
function newUserId(): string {
	return `${randomToken(32).replaceAll("-", "+").replaceAll("_", "/")}=`;
}

export function createAmazonReceipt(input: CreateAmazonReceipt, now = Date.now()): AmazonReceipt {
	const subscription = input.type === "subscription";
	const receipt: AmazonReceipt = {
		// Amazon's receipt ids: base64 with separators, e.g. "wE1EG1gsEZI9q9UnI5YoZ2OxeoVKPdR5bvPMqyKQq5Y=:1:11".
		receiptId: `${randomToken(32)}=:${subscription ? 3 : 1}:11`,
		packageName: input.packageName,
		userId: input.userId ?? newUserId(),
		productId: input.productId,
		productType: TYPES[input.type],
		termSku: subscription ? (input.termSku ?? `${input.productId}_monthly${input.sandbox ? "_term" : ""}`) : null,
		term: subscription ? "1 Month" : null,
		sandbox: input.sandbox,
		testTransaction: input.sandbox || input.test,
		betaProduct: input.beta,
		purchaseDate: now,
		renewalDate: null,
		cancelDate: null,
		cancelReason: null,
		autoRenewing: subscription && input.autoRenew,
		gracePeriodEndDate: null,
		quantity: input.quantity ?? 1,
		gone: false,
	};
	if (subscription) {
		const end = now + (input.expiresInSeconds === undefined ? TERM_MS : input.expiresInSeconds * 1000);
		// Renewal off: no renewal date, and the cancel date is when the renewal would have been.
		if (input.autoRenew) receipt.renewalDate = end;
		else [receipt.cancelDate, receipt.cancelReason] = [end, 1];
	}
	amazonReceipts.set(receipt.receiptId, receipt);
	return receipt;
}

/** verifyReceiptId's answer. */
export function rvsResource(r: AmazonReceipt) {
	return {
		autoRenewing: r.autoRenewing,
		betaProduct: r.betaProduct,
		cancelDate: r.cancelDate,
		cancelReason: r.cancelReason,
		countryCode: "US",
		deferredDate: null,
		deferredSku: null,
		freeTrialEndDate: null,
		gracePeriodEndDate: r.gracePeriodEndDate,
		parentProductId: null,
		productId: r.productId,
		productType: r.productType,
		promotions: null,
		purchaseDate: r.purchaseDate,
		quantity: r.quantity,
		receiptId: r.receiptId,
		renewalDate: r.renewalDate,
		term: r.term,
		termSku: r.termSku,
		testTransaction: r.testTransaction,
	};
}

/** What the Appstore SDK gives the app besides the receipt: UserData, as the app would forward it. */
export function clientUserData(r: AmazonReceipt): string {
	return JSON.stringify({ userId: r.userId, marketplace: "US" });
}
