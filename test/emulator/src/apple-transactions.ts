import * as z from "zod";
import { signJws } from "../../support/pki.ts";
import { nonEmptyString, positiveWhole } from "./admin-body";
import type { AppleEmulatorConfig } from "./config";
import { appleSigningKey } from "./keys";
import { randomDigits } from "./random";

/**
 * The App Store's transactions as the emulator holds them, and their signed form (JWSTransactionDecodedPayload:
 * https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload), signed with the test
 * PKI's leaf exactly as the App Store signs: header { alg, x5c }.
 * A transaction lives in one environment, as at Apple. Xcode transactions exist only on the device: no server
 * knows them, and Xcode signs them with its own key (header kid "Apple_Xcode_Key", one certificate).
 */

const TRANSACTION_TYPES = ["Consumable", "Non-Consumable", "Auto-Renewable Subscription", "Non-Renewing Subscription"] as const;
const ENVIRONMENTS = ["Production", "Sandbox", "Xcode"] as const;
const REVOCATION_TYPES = ["REFUND_FULL", "REFUND_PRORATED", "FAMILY_REVOKE"] as const;

export type AppleTransactionType = (typeof TRANSACTION_TYPES)[number];
export type AppleEnvironment = (typeof ENVIRONMENTS)[number];
export type RevocationType = (typeof REVOCATION_TYPES)[number];

export interface AppleTransactionRecord {
	transactionId: string;
	originalTransactionId: string;
	webOrderLineItemId: string | null;
	bundleId: string;
	productId: string;
	type: AppleTransactionType;
	environment: AppleEnvironment;
	/** The Apple account that bought it: a receipt holds the account's transactions for one app. */
	account: string;
	purchaseDate: number;
	originalPurchaseDate: number;
	expiresDate: number | null;
	quantity: number;
	appAccountToken: string | null;
	subscriptionGroupIdentifier: string | null;
	revocationDate: number | null;
	revocationType: RevocationType | null;
	/** Auto-renewable subscriptions: whether the customer leaves auto-renew on (null for other types). */
	autoRenew: boolean | null;
	/** Apple is trying to collect a renewal that failed (DID_FAIL_TO_RENEW). */
	isInBillingRetry: boolean;
	/** The end of the billing grace period, while the customer keeps access. */
	gracePeriodExpiresDate: number | null;
	/** Replaced by an upgrade to another product of the group. */
	isUpgraded: boolean;
}

export const appleTransactions = new Map<string, AppleTransactionRecord>();

const oneOf = (values: readonly unknown[]) => `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
/** true = a full refund; false undoes one; or Apple's revocationType. */
const Revoked = z.union([z.boolean(), z.enum(REVOCATION_TYPES)], { error: oneOf([true, false, ...REVOCATION_TYPES]) });

/** POST /_emulator/apple/transactions */
export const CreateAppleTransaction = z
	.object({
		bundleId: nonEmptyString.optional(),
		productId: nonEmptyString,
		type: z.enum(TRANSACTION_TYPES, { error: oneOf(TRANSACTION_TYPES) }).optional(),
		environment: z.enum(ENVIRONMENTS, { error: oneOf(ENVIRONMENTS) }).optional(),
		/** Auto-renewable subscriptions: seconds from now to expiry (negative: already expired). Default 30 days. */
		expiresInSeconds: z.number().optional(),
		revoked: Revoked.optional(),
		appAccountToken: z.string().optional(),
		quantity: positiveWhole.optional(),
		/** A renewal of this subscription: same original id, account and group. */
		renewalOf: z.string().optional(),
		/** With renewalOf: the renewed transaction was upgraded (isUpgraded), e.g. to another product of the group. */
		upgrade: z.boolean().optional(),
		account: nonEmptyString.optional(),
		/** Auto-renewable subscriptions: default true. */
		autoRenew: z.boolean().optional(),
		/** The store's notification of the purchase (SUBSCRIBED, DID_RENEW, ONE_TIME_CHARGE): true sends it, false only records it; none without. */
		notify: z.boolean().optional(),
	})
	.refine((input) => input.bundleId !== undefined || input.renewalOf !== undefined, {
		path: ["bundleId"],
		error: "must be a non-empty string (unless renewalOf names the subscription renewed)",
	})
	.refine((input) => input.upgrade === undefined || input.renewalOf !== undefined, { path: ["upgrade"], error: "needs renewalOf: the transaction upgraded from" });
export type CreateAppleTransaction = z.output<typeof CreateAppleTransaction>;

const GRACE = "must be a number of seconds, more than 0";

/** POST /_emulator/apple/transactions/{id}: a refund, revocation, expiry or renewal change after the fact (apple-changes.ts). */
export const UpdateAppleTransaction = z.object({
	revoked: Revoked.optional(),
	expiresInSeconds: z.number().optional(),
	appAccountToken: z.string().nullable().optional(),
	autoRenew: z.boolean().optional(),
	/** A renewal failed and Apple retries billing, with a grace period or without; false: the retry ended. */
	billingRetry: z
		.union([z.object({ gracePeriodSeconds: z.number({ error: GRACE }).positive({ error: GRACE }).optional() }).strict(), z.literal(false)], {
			error: "must be {} or {gracePeriodSeconds} to start a billing retry, or false to end it",
		})
		.optional(),
	/** Send the store's notification of the change. Default true. */
	notify: z.boolean().optional(),
});
export type UpdateAppleTransaction = z.output<typeof UpdateAppleTransaction>;

let sequence = 0;

function newTransactionId(environment: AppleEnvironment): string {
	sequence += 1;
	// Real ids are decimal strings; Sandbox's start 2000000, Xcode's are tiny.
	if (environment === "Xcode") return String(sequence);
	const prefix = environment === "Sandbox" ? "2000000" : "1000000";
	return `${prefix}${String(sequence).padStart(4, "0")}${randomDigits(5)}`;
}

/** The new transaction, or what is wrong with `renewalOf`: it depends on what the emulator holds, not on the body alone. */
export function createAppleTransaction(input: CreateAppleTransaction): AppleTransactionRecord | { refused: string } {
	const renewed = input.renewalOf === undefined ? undefined : appleTransactions.get(input.renewalOf);
	if (input.renewalOf !== undefined && !renewed) return { refused: `no transaction ${input.renewalOf} to renew` };
	const type = input.type ?? renewed?.type ?? "Non-Consumable";
	const environment = input.environment ?? renewed?.environment ?? "Production";
	if (renewed && (type !== "Auto-Renewable Subscription" || renewed.type !== type)) return { refused: "only auto-renewable subscriptions renew" };
	const now = Date.now();
	const transactionId = newTransactionId(environment);
	const subscription = type === "Auto-Renewable Subscription";
	const record: AppleTransactionRecord = {
		transactionId,
		originalTransactionId: renewed?.originalTransactionId ?? transactionId,
		webOrderLineItemId: subscription ? `${randomDigits(8)}` : null,
		// The body names a bundle or a renewal (CreateAppleTransaction's refine).
		bundleId: renewed?.bundleId ?? input.bundleId!,
		productId: input.productId,
		type,
		environment,
		account: input.account ?? renewed?.account ?? crypto.randomUUID(),
		purchaseDate: now,
		originalPurchaseDate: renewed?.originalPurchaseDate ?? now,
		expiresDate: subscription ? now + (input.expiresInSeconds ?? 30 * 24 * 3600) * 1000 : null,
		quantity: input.quantity ?? 1,
		appAccountToken: input.appAccountToken ?? renewed?.appAccountToken ?? null,
		subscriptionGroupIdentifier: subscription ? (renewed?.subscriptionGroupIdentifier ?? `group.${input.productId}`) : null,
		revocationDate: null,
		revocationType: null,
		autoRenew: subscription ? (input.autoRenew ?? true) : null,
		isInBillingRetry: false,
		gracePeriodExpiresDate: null,
		isUpgraded: false,
	};
	applyRevocation(record, input.revoked);
	if (renewed) {
		// The renewal is the subscription's next period: a billing retry of the one renewed is over (recovered).
		renewed.isInBillingRetry = false;
		renewed.gracePeriodExpiresDate = null;
		if (input.upgrade) renewed.isUpgraded = true;
	}
	appleTransactions.set(transactionId, record);
	return record;
}

export function applyRevocation(record: AppleTransactionRecord, revoked: CreateAppleTransaction["revoked"]): void {
	if (revoked === undefined) return;
	if (revoked === false) {
		record.revocationDate = null;
		record.revocationType = null;
		return;
	}
	record.revocationDate = Date.now();
	record.revocationType = revoked === true ? "REFUND_FULL" : revoked;
}

/** The JWSTransactionDecodedPayload Apple would sign now for this transaction. */
export function transactionPayload(t: AppleTransactionRecord): Record<string, unknown> {
	return {
		transactionId: t.transactionId,
		originalTransactionId: t.originalTransactionId,
		...(t.webOrderLineItemId ? { webOrderLineItemId: t.webOrderLineItemId } : {}),
		bundleId: t.bundleId,
		productId: t.productId,
		...(t.subscriptionGroupIdentifier ? { subscriptionGroupIdentifier: t.subscriptionGroupIdentifier } : {}),
		purchaseDate: t.purchaseDate,
		originalPurchaseDate: t.originalPurchaseDate,
		...(t.expiresDate !== null ? { expiresDate: t.expiresDate } : {}),
		quantity: t.quantity,
		type: t.type,
		...(t.appAccountToken ? { appAccountToken: t.appAccountToken } : {}),
		inAppOwnershipType: "PURCHASED",
		signedDate: Date.now(),
		...(t.revocationDate !== null
			? { revocationDate: t.revocationDate, revocationType: t.revocationType, ...(t.revocationType === "FAMILY_REVOKE" ? {} : { revocationReason: 0 }) }
			: {}),
		environment: t.environment,
		transactionReason: t.originalTransactionId === t.transactionId ? "PURCHASE" : "RENEWAL",
		...(t.isUpgraded ? { isUpgraded: true } : {}),
		storefront: "USA",
		storefrontId: "143441",
		price: 990,
		currency: "USD",
	};
}

/**
 * Get All Subscription Statuses' and notifications' status: 1 active, 2 expired, 3 billing retry, 4 billing grace
 * period, 5 revoked (https://developer.apple.com/documentation/appstoreserverapi/status).
 */
export function subscriptionStatus(t: AppleTransactionRecord, now = Date.now()): number {
	if (t.revocationDate !== null) return 5;
	if (t.isInBillingRetry) return t.gracePeriodExpiresDate !== null && t.gracePeriodExpiresDate > now ? 4 : 3;
	return (t.expiresDate ?? 0) > now ? 1 : 2;
}

/**
 * JWSRenewalInfoDecodedPayload for the latest transaction of a subscription
 * (https://developer.apple.com/documentation/appstoreserverapi/jwsrenewalinfodecodedpayload). expirationIntent, once
 * it has expired: 1 the customer canceled (auto-renew off), 2 a billing error.
 */
export function renewalInfoPayload(t: AppleTransactionRecord, now = Date.now()): Record<string, unknown> {
	const status = subscriptionStatus(t, now);
	return {
		originalTransactionId: t.originalTransactionId,
		autoRenewProductId: t.productId,
		productId: t.productId,
		autoRenewStatus: t.autoRenew === false || t.revocationDate !== null ? 0 : 1,
		...(status === 2 || status === 3 || status === 4 ? { expirationIntent: t.autoRenew === false ? 1 : 2 } : {}),
		isInBillingRetryPeriod: t.isInBillingRetry,
		...(t.isInBillingRetry && t.gracePeriodExpiresDate !== null ? { gracePeriodExpiresDate: t.gracePeriodExpiresDate } : {}),
		signedDate: now,
		environment: t.environment,
		recentSubscriptionStartDate: t.originalPurchaseDate,
		...(t.expiresDate !== null ? { renewalDate: t.expiresDate } : {}),
	};
}

/** Signs Apple-style, or Xcode-style for Xcode transactions. */
export async function signApple(config: AppleEmulatorConfig, payload: Record<string, unknown>): Promise<string> {
	const key = await appleSigningKey(config);
	if (payload.environment === "Xcode") {
		return signJws(payload, key, config.signing.x5c.slice(0, 1), { kid: "Apple_Xcode_Key", typ: "JWT" });
	}
	return signJws(payload, key, config.signing.x5c);
}

export function signTransaction(config: AppleEmulatorConfig, t: AppleTransactionRecord): Promise<string> {
	return signApple(config, transactionPayload(t));
}

/** The transactions of one subscription, latest (furthest expiry) last. */
export function subscriptionChain(originalTransactionId: string): AppleTransactionRecord[] {
	return [...appleTransactions.values()]
		.filter((t) => t.originalTransactionId === originalTransactionId)
		.sort((a, b) => (a.expiresDate ?? a.purchaseDate) - (b.expiresDate ?? b.purchaseDate));
}
