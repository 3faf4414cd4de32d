/**
 * The App Store half of the fixtures: a test PKI shaped like Apple's, App Store Connect API keys, and the
 * apps' `apple` blocks. Merged into APPS_CONFIG / EMULATOR_CONFIG by fixtures.ts.
 * Generated fresh each run (WebCrypto only: this runs in Node from vitest.config.ts and scripts/dev.ts).
 */
import { generateEcKeyPair } from "./keys.ts";
import { createApplePki } from "./pki.ts";

export interface AppleFixtures {
	/** Per existing app id (see fixtures.ts), the `apple` block of that app's config. */
	appleByAppId: Record<string, Record<string, unknown>>;
	/** Complete app configs used only by App Store tests. */
	extraApps: Record<string, unknown>[];
	/** The endpoints.* entries for Apple, pointing at the emulator. */
	endpoints: Record<string, string>;
	/** Base64 DER roots the service trusts (the test root, instead of Apple Root CA G3). */
	appleRootCertificates: string[];
	/** EMULATOR_CONFIG.apple: what the emulator needs to sign and to check bearer tokens. */
	emulator: Record<string, unknown>;
}

/** One issuer (App Store Connect team) for every test key, as a real team would have. */
export const APPLE_ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a";

/** The sample app's App Store identity (fixtures.ts SAMPLE_APP is the same app). */
export const APPLE_SAMPLE = { appId: "1234", bundleId: "com.example.iapedge", appAppleId: 1234567890, keyId: "SAMPLEKEY1" } as const;

/** fixtures.ts TEST_APPS.sandbox on the App Store side: accepts Sandbox purchases. */
export const APPLE_SANDBOX = { appId: "sandbox-app", bundleId: "com.example.sandbox", appAppleId: 1234567891, keyId: "SANDBOXKEY" } as const;

/** fixtures.ts TEST_APPS.transfer on the App Store side (ownership: transfer_on_restore). */
export const APPLE_TRANSFER = { appId: "transfer-app", bundleId: "com.example.transfer", appAppleId: 1234567897, keyId: "TRANSFERKY" } as const;

/** fixtures.ts TEST_APPS.events on the App Store side. */
export const APPLE_EVENTS = { appId: "events-app", bundleId: "com.example.events", appAppleId: 1234567898, keyId: "EVENTSKEY1" } as const;

/** Apps that exist only for App Store tests (extraApps). Every one has the same product catalogue as the sample. */
export const APPLE_TEST_APPS = {
	/** Only a shared secret: receipts go through verifyReceipt. Accepts Sandbox. */
	receiptOnly: {
		id: "apple-receipt-app",
		apiKey: "apple-receipt-api-key-0123456789",
		bundleId: "com.example.receipts",
		appAppleId: 1234567892,
		sharedSecret: "0123456789abcdef0123456789abcdef",
		acceptSandbox: true,
	},
	/** Only a shared secret, Production only. */
	receiptStrict: {
		id: "apple-receipt-strict-app",
		apiKey: "apple-receipt-strict-api-key-0123",
		bundleId: "com.example.receipts.strict",
		appAppleId: 1234567893,
		sharedSecret: "fedcba9876543210fedcba9876543210",
		acceptSandbox: false,
	},
	/** allowLocalTesting: accepts Xcode-signed transactions (no API key). */
	localTesting: {
		id: "apple-local-testing-app",
		apiKey: "apple-local-testing-api-key-01234",
		bundleId: "com.example.localtesting",
		appAppleId: 1234567894,
		acceptSandbox: true,
	},
	/** appAccountTokenIsUserUuid: a transaction bound to another user is refused. */
	accountToken: {
		id: "apple-account-token-app",
		apiKey: "apple-account-token-api-key-0123",
		bundleId: "com.example.accounttoken",
		appAppleId: 1234567895,
		keyId: "ACCTOKEN01",
		acceptSandbox: false,
	},
	/** refreshSignedTransactions: every signed transaction is asked about again, to catch refunds made since. */
	refresh: {
		id: "apple-refresh-app",
		apiKey: "apple-refresh-api-key-0123456789",
		bundleId: "com.example.refresh",
		appAppleId: 1234567896,
		keyId: "REFRESHKEY",
		acceptSandbox: false,
	},
} as const;

const PRODUCTS = { coins_100: "consumable", premium_lifetime: "non_consumable", premium_monthly: "subscription" };

export async function createAppleFixtures(emulatorUrl: string, options: { includeTestApps: boolean }): Promise<AppleFixtures> {
	const base = emulatorUrl.replace(/\/+$/, "");
	const pki = await createApplePki();
	const apiKeys: { keyId: string; issuerId: string; publicKey: string; bundleIds: string[] }[] = [];
	const apps: { bundleId: string; appAppleId: number; sharedSecret?: string }[] = [];

	/** An App Store Connect In-App Purchase key for one app: the service gets the .p8, the emulator the public key. */
	const withApiKey = async (keyId: string, bundleId: string, appAppleId: number) => {
		const key = await generateEcKeyPair();
		apiKeys.push({ keyId, issuerId: APPLE_ISSUER_ID, publicKey: key.publicKeyPem, bundleIds: [bundleId] });
		apps.push({ bundleId, appAppleId });
		return { bundleId, appAppleId, api: { issuerId: APPLE_ISSUER_ID, keyId, privateKey: key.privateKeyPem } };
	};

	const appleByAppId: Record<string, Record<string, unknown>> = {
		[APPLE_SAMPLE.appId]: await withApiKey(APPLE_SAMPLE.keyId, APPLE_SAMPLE.bundleId, APPLE_SAMPLE.appAppleId),
	};
	const extraApps: Record<string, unknown>[] = [];

	if (options.includeTestApps) {
		appleByAppId[APPLE_SANDBOX.appId] = await withApiKey(APPLE_SANDBOX.keyId, APPLE_SANDBOX.bundleId, APPLE_SANDBOX.appAppleId);
		appleByAppId[APPLE_TRANSFER.appId] = await withApiKey(APPLE_TRANSFER.keyId, APPLE_TRANSFER.bundleId, APPLE_TRANSFER.appAppleId);
		appleByAppId[APPLE_EVENTS.appId] = await withApiKey(APPLE_EVENTS.keyId, APPLE_EVENTS.bundleId, APPLE_EVENTS.appAppleId);
		const { receiptOnly, receiptStrict, localTesting, accountToken, refresh } = APPLE_TEST_APPS;
		const app = (spec: { id: string; apiKey: string; acceptSandbox: boolean }, apple: Record<string, unknown>) => ({
			id: spec.id,
			apiKeys: [spec.apiKey],
			acceptSandbox: spec.acceptSandbox,
			products: PRODUCTS,
			apple,
		});
		for (const spec of [receiptOnly, receiptStrict]) {
			apps.push({ bundleId: spec.bundleId, appAppleId: spec.appAppleId, sharedSecret: spec.sharedSecret });
			extraApps.push(app(spec, { bundleId: spec.bundleId, appAppleId: spec.appAppleId, sharedSecret: spec.sharedSecret }));
		}
		apps.push({ bundleId: localTesting.bundleId, appAppleId: localTesting.appAppleId });
		extraApps.push(app(localTesting, { bundleId: localTesting.bundleId, appAppleId: localTesting.appAppleId, allowLocalTesting: true }));
		extraApps.push(
			app(accountToken, { ...(await withApiKey(accountToken.keyId, accountToken.bundleId, accountToken.appAppleId)), appAccountTokenIsUserUuid: true }),
			app(refresh, { ...(await withApiKey(refresh.keyId, refresh.bundleId, refresh.appAppleId)), refreshSignedTransactions: true }),
		);
	}

	return {
		appleByAppId,
		extraApps,
		endpoints: {
			appleProduction: `${base}/apple/production`,
			appleSandbox: `${base}/apple/sandbox`,
			appleReceiptProduction: `${base}/apple/receipt/production/verifyReceipt`,
			appleReceiptSandbox: `${base}/apple/receipt/sandbox/verifyReceipt`,
		},
		appleRootCertificates: [pki.root.base64],
		emulator: { signing: { privateKey: pki.leaf.privateKeyPkcs8Pem, x5c: pki.x5c }, apiKeys, apps },
	};
}
