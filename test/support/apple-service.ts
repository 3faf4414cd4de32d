/**
 * Test helpers for the App Store: the emulator's Apple admin API, the loaded configuration, and bearer tokens
 * made by hand for testing the emulator's checks. Nothing here mocks the service.
 */
import { env } from "cloudflare:workers";
import { SignJWT, importPKCS8 } from "jose";
import { loadConfig } from "../../src/config/load";
import type { AppConfig, Config } from "../../src/config/schema";
import { Refusal } from "../../src/answers";
import { APPLE_SAMPLE } from "./apple-fixtures.ts";
import { json, type SentNotification } from "./service.ts";

export type AppleTransactionType = "Consumable" | "Non-Consumable" | "Auto-Renewable Subscription" | "Non-Renewing Subscription";
export type Revocation = boolean | "REFUND_FULL" | "REFUND_PRORATED" | "FAMILY_REVOKE";

export interface CreatedAppleTransaction {
	transactionId: string;
	originalTransactionId: string;
	bundleId: string;
	productId: string;
	type: AppleTransactionType;
	environment: "Production" | "Sandbox" | "Xcode";
	expiresDate: number | null;
	/** The JWS StoreKit 2 hands the app. */
	signedTransaction: string;
	/** The base64 app receipt StoreKit 1 would hand the app. */
	receipt: string;
	/** The notification sent for the purchase, with `notify: true`. */
	notifications: SentNotification[];
}

async function adminFetch(path: string, init?: RequestInit): Promise<Response> {
	return fetch(`${env.TEST_EMULATOR_URL}/_emulator${path}`, init);
}

const post = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export interface CreateAppleTransactionInput {
	bundleId?: string;
	productId?: string;
	type?: AppleTransactionType;
	environment?: "Production" | "Sandbox" | "Xcode";
	/** Auto-renewable subscriptions: seconds from now to expiry (negative: already expired). */
	expiresInSeconds?: number;
	revoked?: Revocation;
	appAccountToken?: string;
	quantity?: number;
	/** Renew this subscription: a new transaction with the same original id. */
	renewalOf?: string;
	/** With renewalOf: the renewed transaction was upgraded (it carries isUpgraded). */
	upgrade?: boolean;
	account?: string;
	/** Auto-renewable subscriptions: default true. */
	autoRenew?: boolean;
	/** SUBSCRIBED / DID_RENEW / ONE_TIME_CHARGE: true sends it, false only records it (for the history); none when left out. */
	notify?: boolean;
}

export interface AppleTransactionUpdate {
	revoked?: Revocation;
	expiresInSeconds?: number;
	appAccountToken?: string | null;
	autoRenew?: boolean;
	/** A renewal failed: Apple retries billing, with a grace period or without; false: the retry ended. */
	billingRetry?: { gracePeriodSeconds?: number } | false;
	/** Send the notification for the change (default true). */
	notify?: boolean;
}

/** What POST /_emulator/apple/notifications answers. */
export interface SentAppleNotification {
	notificationUUID: string;
	signedPayload: string;
	payload: Record<string, any>;
}

export const appleEmulator = {
	/** A purchase at the App Store. Defaults: the sample app, Production, Non-Consumable premium_lifetime. */
	async createTransaction(input: CreateAppleTransactionInput = {}): Promise<CreatedAppleTransaction> {
		const response = await adminFetch("/apple/transactions", post({ bundleId: APPLE_SAMPLE.bundleId, productId: "premium_lifetime", ...input }));
		if (response.status !== 201) throw new Error(`emulator refused transaction: ${await response.text()}`);
		return json(response);
	},
	/** A monthly auto-renewable subscription, active for `expiresInSeconds` (default 30 days). */
	createSubscription(input: CreateAppleTransactionInput = {}): Promise<CreatedAppleTransaction> {
		return appleEmulator.createTransaction({ productId: "premium_monthly", type: "Auto-Renewable Subscription", ...input });
	},
	async transaction(id: string): Promise<Record<string, unknown>> {
		return json(await adminFetch(`/apple/transactions/${encodeURIComponent(id)}`));
	},
	/** Refund, revoke, expire or change the renewal of a transaction after the app received it; answers it and the notifications sent. */
	async updateTransaction(id: string, patch: AppleTransactionUpdate): Promise<Record<string, unknown> & { notifications: SentNotification[] }> {
		const response = await adminFetch(`/apple/transactions/${encodeURIComponent(id)}`, post(patch));
		if (response.status !== 200) throw new Error(`emulator refused update: ${await response.text()}`);
		return json(response);
	},
	/** Any App Store Server Notification V2 about a transaction as it stands now (sent unless notify is false). */
	async notify(
		transactionId: string,
		notificationType: string,
		subtype?: string,
		options: { notify?: boolean; consumptionRequestReason?: string } = {},
	): Promise<SentAppleNotification> {
		const response = await adminFetch("/apple/notifications", post({ transactionId, notificationType, ...(subtype === undefined ? {} : { subtype }), ...options }));
		if (response.status !== 201) throw new Error(`emulator refused notification: ${await response.text()}`);
		return json(response);
	},
	/** Apple's coded error (App Store Server API) or a verifyReceipt status, for the next `times` calls matching. */
	async error(fault: { match: string; errorCode?: number; receiptStatus?: number; isRetryable?: boolean; retryAfterSeconds?: number; times?: number }): Promise<void> {
		const response = await adminFetch("/apple/errors", post(fault));
		if (response.status !== 201) throw new Error(`emulator refused error: ${await response.text()}`);
	},
};

/** The configuration the service runs with in tests (APPS_CONFIG from vitest.config.ts). */
export function testConfig(): Config {
	const loaded = loadConfig(env);
	if (!loaded.ok) throw loaded.error;
	return loaded.config;
}

export function testApp(id: string): AppConfig {
	const app = testConfig().apps.find((a) => a.id === id);
	if (!app) throw new Error(`no app ${id} in the test configuration`);
	return app;
}

/** A bearer token for the App Store Server API, with every claim open to being made wrong. */
export async function appleBearerToken(options: {
	privateKeyPem: string;
	keyId: string;
	issuerId: string;
	bundleId: string;
	audience?: string;
	/** Seconds since the epoch. Default now. */
	iat?: number;
	/** Seconds since the epoch. Default iat + 5 minutes. */
	exp?: number;
}): Promise<string> {
	const iat = options.iat ?? Math.floor(Date.now() / 1000);
	return new SignJWT({ bid: options.bundleId })
		.setProtectedHeader({ alg: "ES256", kid: options.keyId, typ: "JWT" })
		.setIssuer(options.issuerId)
		.setIssuedAt(iat)
		.setExpirationTime(options.exp ?? iat + 300)
		.setAudience(options.audience ?? "appstoreconnect-v1")
		.sign(await importPKCS8(options.privateKeyPem, "ES256"));
}

/** The body a wrapper app POSTs to /verify for an App Store purchase, as a JWS (StoreKit 2) or a receipt (StoreKit 1). */
export function appleVerifyBody(
	tx: CreatedAppleTransaction,
	overrides: { evidence?: "jws" | "receipt"; userIdentifier?: string; appId?: string | number; productID?: string; purchaseID?: string } = {},
) {
	return {
		userIdentifier: overrides.userIdentifier ?? "user-1",
		appId: overrides.appId ?? Number(APPLE_SAMPLE.appId),
		purchaseDetails: {
			verificationData: {
				serverVerificationData: overrides.evidence === "receipt" ? tx.receipt : tx.signedTransaction,
				localVerificationData: overrides.evidence === "receipt" ? tx.receipt : tx.signedTransaction,
				source: "app_store",
			},
			productID: overrides.productID ?? tx.productId,
			purchaseID: overrides.purchaseID ?? tx.transactionId,
			status: "purchased",
			transactionDate: String(Date.now()),
		},
	};
}

/** The error a promise rejects with; a failure when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
	return promise.then(
		(value) => {
			throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
		},
		(err: unknown) => err,
	);
}

/** The Refusal a promise rejects with; a failure when it resolves or rejects with anything else. */
export async function refusal(promise: Promise<unknown>): Promise<Refusal> {
	const err = await rejection(promise);
	if (!(err instanceof Refusal)) throw err;
	return err;
}
