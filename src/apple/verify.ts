import type { AppConfig, AppleAppConfig, Config } from "../config/schema";
import { type Purchase } from "../purchase";
import { NotConfigured, Refusal, UnknownToStore } from "../answers";
import { AppleRejected, AppStoreServerApiClient, type AppleApiEnvironment, type Lookup } from "./api-client";
import { AppleReceiptError, AppleVerificationError } from "./errors";
import { checkClaim, purchaseFromReceipt, purchaseFromTransaction, type AppleClaim } from "./judge";
import { parseAppReceipt } from "./receipt";
import { verifyReceipt } from "./receipt-client";
import { verifyAppleRenewalInfo, verifyAppleTransaction, type AppleRenewalInfo, type AppleTransaction } from "./signed-data";

/**
 * Verifies App Store purchase evidence and returns the normalized purchase, or throws Refusal (a reasoned "no")
 * or StoreUnreachable (no answer to be had), exactly like verifyGooglePurchase. Three kinds of evidence:
 *   - a StoreKit 2 signed transaction: verified offline against Apple's root; with refreshSignedTransactions,
 *     asked about again through the App Store Server API to catch a refund made after it was signed;
 *   - a transaction id: looked up with Get Transaction Info (needs API credentials);
 *   - a legacy app receipt: only a carrier of transaction ids. With API credentials the claimed transaction is
 *     looked up like a transaction id; with only a shared secret, Apple's verifyReceipt vouches for it.
 * Whatever the app sends, what grants access is something Apple signed or said. A lapsed auto-renewable
 * subscription is looked up once more (Get All Subscription Statuses, when the app has API credentials): the app
 * may hold an old period's transaction of a subscription that has renewed since.
 */

/** What the app sent, in one of three forms; `userId` is checked against appAccountToken when apple.appAccountTokenIsUserUuid is on. */
export type AppleEvidence = { store: "app_store"; productId: string; userId: string } & (
	| { form: "signed_transaction"; signedTransaction: string }
	/** A legacy app receipt (base64); `transactionId` is the one the app claims (the wrapper's purchaseID), if it said. */
	| { form: "receipt"; receipt: string; transactionId?: string }
	| { form: "transaction_id"; transactionId: string }
);

interface Context {
	app: AppConfig;
	apple: AppleAppConfig;
	config: Config;
	claim: AppleClaim;
	/** Set when the app has App Store Server API credentials. */
	client: AppStoreServerApiClient | undefined;
	now: number;
}

export async function verifyAppleEvidence(app: AppConfig, config: Config, evidence: AppleEvidence, now = Date.now()): Promise<Purchase> {
	const apple = app.apple;
	// Not verdicts on the purchase: the deployment or the request lacks what is needed to ask Apple. A 400, so a
	// wrapper app never takes them for a "no" (and refunds).
	if (!apple) throw new NotConfigured(`app ${app.id} is not configured for the App Store (apps[].apple in APPS_CONFIG)`, "store");
	const claim: AppleClaim = { productId: evidence.productId, userId: evidence.userId };
	const ctx: Context = { app, apple, config, claim, client: apiClientFor(app, config), now };
	switch (evidence.form) {
		case "signed_transaction":
			return fromSignedTransaction(ctx, evidence.signedTransaction);
		case "receipt":
			return fromReceipt(ctx, evidence.receipt, evidence.transactionId);
		case "transaction_id":
			return fromTransactionId(ctx, evidence.transactionId);
	}
}

/**
 * The transaction id this evidence claims, read without asking Apple, where there is one to read: a transaction id,
 * or the claimed transaction of a receipt this service can verify. Used only to find what the ledger already holds
 * (src/ledger/replay.ts); undefined when only Apple can tell (a signed transaction needs no call anyway).
 */
export function appleTransactionIdOf(app: AppConfig, evidence: AppleEvidence): string | undefined {
	const apple = app.apple;
	if (!apple) return undefined;
	switch (evidence.form) {
		case "transaction_id":
			return apple.api ? evidence.transactionId : undefined;
		case "receipt": {
			if (!apple.api && apple.sharedSecret === undefined) return undefined;
			try {
				const parsed = parseAppReceipt(evidence.receipt);
				if (parsed.bundleId !== apple.bundleId) return undefined;
				return pickClaimed(parsed.inApp, evidence.transactionId, evidence.productId, (t) => t.purchaseDate ?? 0).transactionId;
			} catch {
				// Unreadable here: the usual path says why.
				return undefined;
			}
		}
		case "signed_transaction":
			return undefined;
	}
}

/** The App Store quota bucket this evidence would spend, if any. */
export function appleBucketOf(app: AppConfig, evidence: AppleEvidence): string | undefined {
	const apple = app.apple;
	if (!apple) return undefined;
	if (evidence.form === "signed_transaction") return apple.api && apple.refreshSignedTransactions ? "transactions" : undefined;
	return apple.api ? "transactions" : evidence.form === "receipt" ? "verify_receipt" : undefined;
}

/** How many transactions of one receipt a check looks up (one App Store Server API call each). */
const MAX_RECEIPT_LOOKUPS = 50;

/**
 * Every transaction the evidence holds, as Apple states it now, with none of a claim's checks (product, user): for
 * a check that claims nothing. A receipt lists each of its in-app transactions.
 */
export async function listAppleEvidence(app: AppConfig, config: Config, evidence: AppleEvidence, now = Date.now()): Promise<Purchase[]> {
	const apple = app.apple;
	if (!apple) throw new NotConfigured(`app ${app.id} is not configured for the App Store (apps[].apple in APPS_CONFIG)`, "store");
	const ctx: Context = { app, apple, config, claim: { productId: evidence.productId, userId: evidence.userId }, client: apiClientFor(app, config), now };
	switch (evidence.form) {
		case "signed_transaction": {
			const tx = await verifyTransaction(ctx, evidence.signedTransaction);
			return [purchaseFromTransaction(app, tx, undefined, now)];
		}
		case "transaction_id": {
			if (!ctx.client) throw new NotConfigured(`app ${app.id} has no App Store Server API key (apple.api): send the signed transaction or the receipt instead of a transaction id`, "transactionId");
			const tx = await lookUpTransaction(ctx, ctx.client, evidence.transactionId, { acceptSandbox: app.acceptSandbox });
			return [purchaseFromTransaction(app, tx, undefined, now)];
		}
		case "receipt": {
			if (ctx.client) {
				const client = ctx.client;
				const ids = [...new Set(readReceipt(ctx, evidence.receipt).inApp.map((t) => t.transactionId))].slice(0, MAX_RECEIPT_LOOKUPS);
				const found = await Promise.all(
					ids.map(async (id) => {
						try {
							return purchaseFromTransaction(app, await lookUpTransaction(ctx, client, id, { acceptSandbox: app.acceptSandbox }), undefined, now);
						} catch (err) {
							// A transaction Apple does not know is not one the receipt holds.
							if (err instanceof Refusal) return undefined;
							throw err;
						}
					}),
				);
				return found.filter((p): p is Purchase => p !== undefined);
			}
			const verified = await receiptFromApple(ctx, evidence.receipt);
			return verified.transactions.map((t) => purchaseFromReceipt(app, verified, t, verified.renewals.get(t.originalTransactionId), now));
		}
	}
}

/** The app's App Store Server API client, spending the app's quota; none without API credentials. */
export function apiClientFor(app: AppConfig, config: Config): AppStoreServerApiClient | undefined {
	const apple = app.apple;
	if (!apple?.api) return undefined;
	return new AppStoreServerApiClient({
		bundleId: apple.bundleId,
		credentials: apple.api,
		endpoints: config.endpoints,
		timeoutMs: config.storeTimeoutMs,
		quota: { appId: app.id, quotas: app.quotas },
	});
}

async function fromSignedTransaction(ctx: Context, jws: string): Promise<Purchase> {
	let tx = await verifyTransaction(ctx, jws);
	const environment = apiEnvironment(tx);
	if (ctx.client && environment && ctx.apple.refreshSignedTransactions) {
		// The JWS is Apple's word at signing time; a refund since then is only known to the server.
		const fresh = await lookUpTransaction(ctx, ctx.client, tx.transactionId, { environment });
		if (fresh.transactionId !== tx.transactionId) throw new Refusal("invalid_purchase", "Apple answered a different transaction than the one asked about");
		tx = fresh;
	}
	return judge(ctx, tx);
}

async function fromTransactionId(ctx: Context, transactionId: string): Promise<Purchase> {
	if (!ctx.client) {
		throw new NotConfigured(`app ${ctx.app.id} has no App Store Server API key (apple.api): send the signed transaction or the receipt instead of a transaction id`, "transactionId");
	}
	return judge(ctx, await lookUpTransaction(ctx, ctx.client, transactionId, { acceptSandbox: ctx.app.acceptSandbox }));
}

async function fromReceipt(ctx: Context, receipt: string, claimedId: string | undefined): Promise<Purchase> {
	if (ctx.client) {
		const parsed = readReceipt(ctx, receipt);
		const picked = pickClaimed(parsed.inApp, claimedId, ctx.claim.productId, (t) => t.purchaseDate ?? 0);
		return judge(ctx, await lookUpTransaction(ctx, ctx.client, picked.transactionId, { acceptSandbox: ctx.app.acceptSandbox }));
	}
	const verified = await receiptFromApple(ctx, receipt);
	let picked = pickClaimed(verified.transactions, claimedId, ctx.claim.productId, (t) => t.expiresDateMs ?? t.purchaseDateMs);
	await checkClaim(ctx.app, ctx.claim, picked, { environment: verified.environment, bundleId: verified.bundleId, transaction: picked.raw });
	if (picked.expiresDateMs !== null) {
		// A subscription's later renewals and plan changes share its original id: the latest one says whether it is
		// still paid for.
		const renewals = verified.transactions.filter((t) => t.originalTransactionId === picked.originalTransactionId && t.expiresDateMs !== null);
		picked = renewals.reduce((a, b) => ((b.expiresDateMs ?? 0) > (a.expiresDateMs ?? 0) ? b : a), picked);
	}
	return purchaseFromReceipt(ctx.app, verified, picked, verified.renewals.get(picked.originalTransactionId), ctx.now);
}

/** A receipt read here, only to know what to ask Apple; its own word (unauthenticated) is enough to refuse early, never to accept. */
function readReceipt(ctx: Context, receipt: string): ReturnType<typeof parseAppReceipt> {
	let parsed: ReturnType<typeof parseAppReceipt>;
	try {
		parsed = parseAppReceipt(receipt);
	} catch (err) {
		if (err instanceof AppleReceiptError) throw new Refusal("invalid_purchase", `the receipt cannot be read: ${err.message}`);
		throw err;
	}
	if (parsed.bundleId !== ctx.apple.bundleId) throw new Refusal("app_mismatch", `the receipt is for bundle ${parsed.bundleId}, not ${ctx.apple.bundleId}`);
	if (parsed.receiptType === "Xcode") throw new Refusal("environment_not_accepted", "an Xcode receipt cannot be confirmed by Apple: send the StoreKit 2 signed transaction instead");
	if (parsed.receiptType === "ProductionSandbox" && !ctx.app.acceptSandbox) {
		throw new Refusal("sandbox_not_accepted", "this is a Sandbox receipt and the app does not accept Sandbox purchases");
	}
	return parsed;
}

/** verifyReceipt's answer, for an app with only a shared secret. */
async function receiptFromApple(ctx: Context, receipt: string) {
	if (ctx.apple.sharedSecret === undefined) {
		throw new NotConfigured(`app ${ctx.app.id} has neither an App Store Server API key (apple.api) nor a shared secret (apple.sharedSecret): receipts cannot be verified`, "receipt");
	}
	const verified = await verifyReceipt(receipt, {
		sharedSecret: ctx.apple.sharedSecret,
		acceptSandbox: ctx.app.acceptSandbox,
		endpoints: ctx.config.endpoints,
		timeoutMs: ctx.config.storeTimeoutMs,
		quota: { appId: ctx.app.id, quotas: ctx.app.quotas },
	});
	if (verified.bundleId !== ctx.apple.bundleId) throw new Refusal("app_mismatch", `the receipt is for bundle ${verified.bundleId}, not ${ctx.apple.bundleId}`);
	return verified;
}

/**
 * The receipt's transaction that is the claimed purchase: the one with the claimed id (or whose original id it
 * is: a StoreKit 1 restore gets a new id), else the latest one of the claimed product. A receipt holding
 * neither proves nothing about this purchase.
 */
function pickClaimed<T extends { transactionId: string; originalTransactionId: string | null; productId: string }>(
	transactions: readonly T[],
	claimedId: string | undefined,
	productId: string,
	recency: (t: T) => number,
): T {
	const byId = claimedId === undefined ? undefined : transactions.find((t) => t.transactionId === claimedId || t.originalTransactionId === claimedId);
	if (byId) return byId;
	const sameProduct = transactions.filter((t) => t.productId === productId);
	if (sameProduct.length === 0) {
		throw new Refusal("invalid_purchase", `the receipt holds no transaction ${claimedId === undefined ? "" : `${claimedId} and none `}for product ${productId}`);
	}
	return sameProduct.reduce((a, b) => (recency(b) > recency(a) ? b : a));
}

/** Get Transaction Info, and the signed transaction it returns verified like any other. */
async function lookUpTransaction(ctx: Context, client: AppStoreServerApiClient, transactionId: string, lookup: Lookup): Promise<AppleTransaction> {
	try {
		const found = await client.getTransactionInfo(transactionId, lookup);
		return await verifyTransaction(ctx, found.value.signedTransactionInfo);
	} catch (err) {
		if (err instanceof AppleRejected) {
			const where = "environment" in lookup ? lookup.environment : lookup.acceptSandbox ? "Production or Sandbox" : "Production (Sandbox not asked: the app does not accept Sandbox purchases)";
			throw new UnknownToStore("invalid_purchase", `Apple knows no transaction ${transactionId} for ${ctx.apple.bundleId} in ${where} (errorCode ${err.errorCode})`, err.raw);
		}
		throw err;
	}
}

/**
 * The subscription's latest transaction and renewal info, when the transaction in hand has lapsed: the app may hold
 * an old period's transaction of a subscription that has renewed since, or changed plan (same original id).
 */
async function latestOfSubscription(ctx: Context, tx: AppleTransaction): Promise<{ tx: AppleTransaction; renewal?: AppleRenewalInfo }> {
	const environment = apiEnvironment(tx);
	const lapsed = tx.type === "Auto-Renewable Subscription" && tx.expiresDate !== undefined && tx.expiresDate <= ctx.now;
	if (!ctx.client || !environment || !lapsed || tx.revocationDate !== undefined) return { tx };
	let statuses;
	try {
		statuses = await ctx.client.getAllSubscriptionStatuses(tx.originalTransactionId, { environment });
	} catch (err) {
		// Apple not knowing the subscription leaves the transaction in hand as the answer: expired.
		if (err instanceof AppleRejected) return { tx };
		throw err;
	}
	let latest: { tx: AppleTransaction; renewal?: AppleRenewalInfo } = { tx };
	for (const group of statuses.value.data) {
		for (const last of group.lastTransactions) {
			if (last.originalTransactionId !== tx.originalTransactionId) continue;
			const candidate = await verifyTransaction(ctx, last.signedTransactionInfo);
			if (candidate.originalTransactionId !== tx.originalTransactionId || (candidate.expiresDate ?? 0) < (latest.tx.expiresDate ?? 0)) continue;
			const renewal = last.signedRenewalInfo === undefined ? undefined : await verifyRenewal(ctx, last.signedRenewalInfo);
			latest = { tx: candidate, ...(renewal ? { renewal } : {}) };
		}
	}
	return latest;
}

/** The presented transaction checked against the claim, then judged as the subscription stands now. */
async function judge(ctx: Context, tx: AppleTransaction): Promise<Purchase> {
	await checkClaim(ctx.app, ctx.claim, tx, tx);
	const latest = await latestOfSubscription(ctx, tx);
	return purchaseFromTransaction(ctx.app, latest.tx, latest.renewal, ctx.now);
}

/** The API server that holds this transaction; none for Xcode and LocalTesting data. */
function apiEnvironment(tx: AppleTransaction): AppleApiEnvironment | undefined {
	return tx.environment === "Production" || tx.environment === "Sandbox" ? tx.environment : undefined;
}

/** verifyAppleTransaction, its failures turned into refusals the app can act on. */
async function verifyTransaction(ctx: Context, jws: string): Promise<AppleTransaction> {
	const app = { bundleId: ctx.apple.bundleId, appAppleId: ctx.apple.appAppleId, allowLocalTesting: ctx.apple.allowLocalTesting };
	return refusingAs("signed transaction", async () => (await verifyAppleTransaction(jws, { roots: ctx.config.appleTrustStore, app, acceptSandbox: ctx.app.acceptSandbox, now: ctx.now })).payload);
}

/** verifyAppleRenewalInfo, likewise. */
async function verifyRenewal(ctx: Context, jws: string): Promise<AppleRenewalInfo> {
	const app = { allowLocalTesting: ctx.apple.allowLocalTesting };
	return refusingAs("signed renewal info", async () => (await verifyAppleRenewalInfo(jws, { roots: ctx.config.appleTrustStore, app, acceptSandbox: ctx.app.acceptSandbox, now: ctx.now })).payload);
}

async function refusingAs<T>(what: string, verify: () => Promise<T>): Promise<T> {
	try {
		return await verify();
	} catch (err) {
		if (!(err instanceof AppleVerificationError)) throw err;
		switch (err.code) {
			case "wrong_bundle_id":
			case "wrong_app_apple_id":
				throw new Refusal("app_mismatch", err.message);
			case "environment_not_accepted":
				throw new Refusal("sandbox_not_accepted", "this is a Sandbox purchase and the app does not accept Sandbox purchases");
			case "local_testing_not_allowed":
				throw new Refusal("environment_not_accepted", err.message);
			default:
				throw new Refusal("invalid_signature", `the ${what} does not verify (${err.code}): ${err.message}`);
		}
	}
}
