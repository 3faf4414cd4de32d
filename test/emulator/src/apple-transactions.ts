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
		account: nonEmptyString.optional(),
	})
	.refine((input) => input.bundleId !== undefined || input.renewalOf !== undefined, {
		path: ["bundleId"],
		error: "must be a non-empty string (unless renewalOf names the subscription renewed)",
	});
export type CreateAppleTransaction = z.output<typeof CreateAppleTransaction>;

/** POST /_emulator/apple/transactions/{id}: a refund, revocation or expiry after the fact. */
export const UpdateAppleTransaction = z.object({
	revoked: Revoked.optional(),
	expiresInSeconds: z.number().optional(),
	appAccountToken: z.string().nullable().optional(),
});

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
	};
	applyRevocation(record, input.revoked);
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
		storefront: "USA",
		storefrontId: "143441",
		price: 990,
		currency: "USD",
	};
}

/** JWSRenewalInfoDecodedPayload for the latest transaction of a subscription. */
export function renewalInfoPayload(t: AppleTransactionRecord): Record<string, unknown> {
	const active = t.revocationDate === null && (t.expiresDate ?? 0) > Date.now();
	return {
		originalTransactionId: t.originalTransactionId,
		autoRenewProductId: t.productId,
		productId: t.productId,
		autoRenewStatus: active ? 1 : 0,
		...(active ? {} : { expirationIntent: 1 }),
		signedDate: Date.now(),
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
