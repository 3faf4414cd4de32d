/**
 * One set of apps, credentials and emulator registrations, generated fresh for each test run and each
 * `npm run dev`. The service gets APPS_CONFIG (private keys); the emulator gets EMULATOR_CONFIG (the
 * matching public keys), exactly as the real stores know only your public keys. The one exception is Google's
 * own key for Pub/Sub push tokens, which the emulator (playing Google) holds and publishes at its certs URL.
 */
import { AMAZON_PACKAGES, AMAZON_TOPIC_ARN, AMAZON_UNSERVED_PACKAGE, AMAZON_WRONG_SECRET_APP, createSnsSigner, newSharedSecret } from "./amazon-fixtures.ts";
import { createAppleFixtures } from "./apple-fixtures.ts";
import { generateRsaKeyPair } from "./keys.ts";

export interface FixtureOptions {
	/** Where the store emulator answers, e.g. http://127.0.0.1:8788 or http://store-emulator.test */
	emulatorUrl: string;
	/** Timeout the service allows the stores, in ms. */
	storeTimeoutMs?: number;
	/** Tests add apps of their own (token cache, keyed /verify); `npm run dev` has just the sample. */
	includeTestApps?: boolean;
	/**
	 * Where the service answers, e.g. http://127.0.0.1:8787 or https://iap-edge.test: the store notifications'
	 * URLs and the Pub/Sub push audience are its /v1/notifications/apple and /v1/notifications/google.
	 */
	serviceUrl?: string;
	/** "push": the emulator POSTs notifications itself (`npm run dev`); "hold" (default): tests deliver them from its outbox. */
	notifyMode?: "push" | "hold";
	/** Items per page of Get Notification History and voidedpurchases.list; tests make it small to exercise paging. */
	storePageSize?: number;
	/**
	 * Whether the sample app sends its webhooks to the emulator's receiver (default true: `npm run dev`). Tests keep
	 * the sample quiet and use TEST_APPS.events for webhooks.
	 */
	sampleWebhook?: boolean;
	/** Seconds before a failed webhook is retried (the service's webhookRetrySeconds); tests make it 0. */
	webhookRetrySeconds?: number;
	/**
	 * Where the emulator's Amazon SNS certificate and SubscribeURL are, as the service fetches them. Tests use
	 * https://sns.us-east-1.amazonaws.com/... (every outbound fetch reaches the emulator), so the service runs with
	 * its default SNS host check; without it, the emulator's own address, which the service is told to accept.
	 */
	amazonSnsUrl?: string;
}

export const SAMPLE_APP = {
	id: "1234",
	packageName: "com.example.iapedge",
	bundleId: "com.example.iapedge",
	apiKey: "sample-api-key-0123456789abcdef",
	clientEmail: "iap-verifier@iap-edge-sample.iam.gserviceaccount.com",
} as const;

/**
 * The support console: the sample console key (every app), and Cloudflare Access as the emulator plays it (team
 * domain {emulator}/access; anyone at example.com). Tests add a key that sees the sample app only.
 */
export const SAMPLE_CONSOLE = {
	keyName: "support",
	key: "sample-console-key-0123456789abcdef",
	accessAudience: "iap-edge-sample-access-aud",
	accessEmails: "*@example.com",
} as const;
export const TEST_CONSOLE = { keyName: "sample-only", key: "sample-only-console-key-0123456789" } as const;

/** The Pub/Sub push subscription's service account, which the service expects on every RTDN push. */
export const PUSH_SERVICE_ACCOUNT = "rtdn-push@iap-edge-sample.iam.gserviceaccount.com";

export const TEST_APPS = {
	sandbox: { id: "sandbox-app", packageName: "com.example.sandbox", apiKey: "sandbox-api-key-0123456789abcdef" },
	keyed: {
		id: "keyed-app",
		packageName: "com.example.keyed",
		apiKey: "keyed-api-key-0123456789abcdef00",
		verifyKey: "keyed-verify-key-0123456789abcdef",
	},
	tokenCache: {
		id: "token-cache-app",
		packageName: "com.example.tokencache",
		apiKey: "token-cache-api-key-0123456789ab",
		clientEmail: "token-cache@iap-edge-test.iam.gserviceaccount.com",
	},
	/** ownership: transfer_on_restore, on both stores. */
	transfer: { id: "transfer-app", packageName: "com.example.transfer", bundleId: "com.example.transfer", apiKey: "transfer-api-key-0123456789abcdef", verifyKey: "transfer-verify-key-0123456789abc" },
	/** Webhooks to the emulator's receiver: every event to one endpoint, purchase.* to a second one mid-rotation. */
	events: { id: "events-app", packageName: "com.example.events", bundleId: "com.example.events", apiKey: "events-api-key-0123456789abcdef00" },
	/** An API key of its own, so a test can spend its whole rate limit without touching other tests. */
	rateLimited: { id: "rate-limited-app", apiKey: "rate-limited-api-key-0123456789ab" },
	/** Store quotas: replays answered from the ledger for an hour (Google notifications on). */
	quota: { id: "quota-app", packageName: "com.example.quota", apiKey: "quota-api-key-0123456789abcdef00" },
	/** Store quotas: a store answer is fresh for one second only. */
	stale: { id: "stale-app", packageName: "com.example.stale", apiKey: "stale-api-key-0123456789abcdef00" },
	/** Store quotas: one-time purchases held to 30 Play API calls a minute, a burst of 5. */
	limited: { id: "limited-app", packageName: "com.example.limited", apiKey: "limited-api-key-0123456789abcdef0" },
} as const;

/** The one-time purchase limit of TEST_APPS.limited, which tests give the emulator too. */
export const LIMITED_APP_LIMIT = { limit: 30, periodSeconds: 60, burst: 5 } as const;

export interface Fixtures {
	appsConfig: Record<string, unknown>;
	emulatorConfig: Record<string, unknown>;
}

export async function createFixtures(options: FixtureOptions): Promise<Fixtures> {
	const base = options.emulatorUrl.replace(/\/+$/, "");
	const tokenUri = `${base}/google/token`;
	const [sampleKey, tokenCacheKey, pushKey, accessKey] = await Promise.all([generateRsaKeyPair(), generateRsaKeyPair(), generateRsaKeyPair(), generateRsaKeyPair()]);
	const service = (options.serviceUrl ?? "https://iap-edge.test").replace(/\/+$/, "");
	const notifications = { appleUrl: `${service}/v1/notifications/apple`, googleUrl: `${service}/v1/notifications/google`, amazonUrl: `${service}/v1/notifications/amazon` };
	const googlePush = { audience: notifications.googleUrl, serviceAccountEmail: PUSH_SERVICE_ACCOUNT };

	const serviceAccount = (clientEmail: string, privateKeyPem: string) => ({
		type: "service_account",
		client_email: clientEmail,
		private_key: privateKeyPem,
		private_key_id: crypto.randomUUID().replaceAll("-", ""),
		token_uri: tokenUri,
	});
	const products = { coins_100: "consumable", premium_lifetime: "non_consumable", premium_monthly: "subscription" };
	// Standard Webhooks signing secrets: the service signs with them, the emulator's receiver checks with them.
	const [webhookSecret, nextWebhookSecret] = [newWebhookSecret(), newWebhookSecret()];
	const receiver = `${base}/_emulator/webhooks`;
	// The sample app's one entitlement, unlocked by either premium product.
	const entitlements = { premium: ["premium_monthly", "premium_lifetime"] };

	// Amazon: one developer account (its shared secret) for every app, and SNS's signing key.
	const amazonSecret = newSharedSecret();
	const amazon = (packageName: string, extra: Record<string, unknown> = {}) => ({ sharedSecret: amazonSecret, packageName, ...extra });
	const amazonApps: string[] = [SAMPLE_APP.packageName];
	const snsSigner = await createSnsSigner();
	const snsUrl = options.amazonSnsUrl ?? `${base}/amazon/sns`;

	const apps: Record<string, unknown>[] = [
		{
			id: SAMPLE_APP.id,
			apiKeys: [SAMPLE_APP.apiKey],
			acceptSandbox: false,
			products,
			entitlements,
			...(options.sampleWebhook === false ? {} : { webhooks: [{ url: receiver, secret: webhookSecret, events: ["*"] }] }),
			google: { packageName: SAMPLE_APP.packageName, serviceAccount: serviceAccount(SAMPLE_APP.clientEmail, sampleKey.privateKeyPem) },
			amazon: amazon(SAMPLE_APP.packageName),
		},
	];
	const serviceAccounts: { client_email: string; public_key: string; packages: string[] }[] = [
		{
			client_email: SAMPLE_APP.clientEmail,
			public_key: sampleKey.publicKeyPem,
			packages: [
				SAMPLE_APP.packageName,
				TEST_APPS.sandbox.packageName,
				TEST_APPS.keyed.packageName,
				TEST_APPS.transfer.packageName,
				TEST_APPS.events.packageName,
				TEST_APPS.quota.packageName,
				TEST_APPS.stale.packageName,
				TEST_APPS.limited.packageName,
			],
		},
	];

	if (options.includeTestApps) {
		const sampleAccount = serviceAccount(SAMPLE_APP.clientEmail, sampleKey.privateKeyPem);
		apps.push(
			{
				id: TEST_APPS.sandbox.id,
				apiKeys: [TEST_APPS.sandbox.apiKey],
				acceptSandbox: true,
				products,
				google: { packageName: TEST_APPS.sandbox.packageName, serviceAccount: sampleAccount },
				// The RVS Cloud Sandbox ignores the shared secret: any will do.
				amazon: { sharedSecret: newSharedSecret(), sandbox: true, packageName: AMAZON_PACKAGES.sandbox },
			},
			{
				id: TEST_APPS.keyed.id,
				apiKeys: [TEST_APPS.keyed.apiKey],
				verifyKeys: [TEST_APPS.keyed.verifyKey],
				acceptSandbox: false,
				products,
				google: { packageName: TEST_APPS.keyed.packageName, serviceAccount: sampleAccount },
			},
			{
				id: TEST_APPS.tokenCache.id,
				apiKeys: [TEST_APPS.tokenCache.apiKey],
				acceptSandbox: false,
				products,
				google: {
					packageName: TEST_APPS.tokenCache.packageName,
					serviceAccount: serviceAccount(TEST_APPS.tokenCache.clientEmail, tokenCacheKey.privateKeyPem),
				},
			},
		);
		apps.push({ id: TEST_APPS.rateLimited.id, apiKeys: [TEST_APPS.rateLimited.apiKey], acceptSandbox: false, products });
		apps.push({
			id: TEST_APPS.transfer.id,
			apiKeys: [TEST_APPS.transfer.apiKey],
			verifyKeys: [TEST_APPS.transfer.verifyKey],
			acceptSandbox: false,
			products,
			entitlements,
			ownership: "transfer_on_restore",
			google: { packageName: TEST_APPS.transfer.packageName, serviceAccount: sampleAccount },
			amazon: amazon(AMAZON_PACKAGES.transfer),
		});
		apps.push({
			id: TEST_APPS.events.id,
			apiKeys: [TEST_APPS.events.apiKey],
			acceptSandbox: false,
			products,
			entitlements,
			webhooks: [
				{ url: receiver, secret: webhookSecret, events: ["*"] },
				// Mid-rotation: signed with the new secret and the old one.
				{ url: `${receiver}?endpoint=purchases`, secret: [nextWebhookSecret, webhookSecret], events: ["purchase.*"] },
			],
			google: { packageName: TEST_APPS.events.packageName, serviceAccount: sampleAccount },
			amazon: amazon(AMAZON_PACKAGES.events),
		});
		// Amazon knows the package, under the account's real secret; the app is configured with another.
		apps.push({ id: AMAZON_WRONG_SECRET_APP.id, apiKeys: [AMAZON_WRONG_SECRET_APP.apiKey], acceptSandbox: false, products, amazon: { sharedSecret: newSharedSecret(), packageName: AMAZON_WRONG_SECRET_APP.packageName } });
		amazonApps.push(AMAZON_PACKAGES.sandbox, AMAZON_PACKAGES.events, AMAZON_PACKAGES.transfer, AMAZON_WRONG_SECRET_APP.packageName, AMAZON_UNSERVED_PACKAGE);
		apps.push(
			{
				id: TEST_APPS.quota.id,
				apiKeys: [TEST_APPS.quota.apiKey],
				acceptSandbox: false,
				products,
				freshness: { withNotifications: { oneTimeSeconds: 3600, subscriptionSeconds: 3600 } },
				google: { packageName: TEST_APPS.quota.packageName, serviceAccount: sampleAccount },
			},
			{
				id: TEST_APPS.stale.id,
				apiKeys: [TEST_APPS.stale.apiKey],
				acceptSandbox: false,
				products,
				freshness: { withNotifications: { oneTimeSeconds: 1, subscriptionSeconds: 1 } },
				google: { packageName: TEST_APPS.stale.packageName, serviceAccount: sampleAccount },
			},
			{
				id: TEST_APPS.limited.id,
				apiKeys: [TEST_APPS.limited.apiKey],
				acceptSandbox: false,
				products,
				quotas: { maxWaitMs: 2_000, limits: { "google_play.one_time_purchases": LIMITED_APP_LIMIT } },
				google: { packageName: TEST_APPS.limited.packageName, serviceAccount: sampleAccount },
			},
		);
		serviceAccounts.push({
			client_email: TEST_APPS.tokenCache.clientEmail,
			public_key: tokenCacheKey.publicKeyPem,
			packages: [TEST_APPS.tokenCache.packageName],
		});
	}

	const apple = await createAppleFixtures(base, { includeTestApps: options.includeTestApps ?? false });
	for (const app of apps) {
		const block = apple.appleByAppId[String(app.id)];
		if (block) app.apple = block;
	}
	apps.push(...apple.extraApps);

	const pageSize = options.storePageSize === undefined ? {} : { voidedPageSize: options.storePageSize };
	return {
		appsConfig: {
			apps,
			endpoints: { googlePlay: `${base}/google`, googleCerts: `${base}/google/oauth2/v3/certs`, amazon: `${base}/amazon`, ...apple.endpoints },
			storeTimeoutMs: options.storeTimeoutMs ?? 10_000,
			// Amazon SNS's own hosts (the default) in tests; the emulator's address otherwise.
			notifications: { googlePush, ...(options.amazonSnsUrl === undefined ? { amazonSns: { certificateHosts: [new URL(base).hostname] } } : {}) },
			console: {
				keys: [
					{ name: SAMPLE_CONSOLE.keyName, key: SAMPLE_CONSOLE.key, apps: "*" },
					...(options.includeTestApps ? [{ name: TEST_CONSOLE.keyName, key: TEST_CONSOLE.key, apps: [SAMPLE_APP.id] }] : []),
				],
				access: { teamDomain: `${base}/access`, audience: SAMPLE_CONSOLE.accessAudience, users: [{ email: SAMPLE_CONSOLE.accessEmails, apps: "*" }] },
			},
			...(options.webhookRetrySeconds === undefined ? {} : { webhookRetrySeconds: options.webhookRetrySeconds }),
			...(apple.appleRootCertificates.length > 0 ? { appleRootCertificates: apple.appleRootCertificates } : {}),
		},
		emulatorConfig: {
			google: { serviceAccounts, push: { privateKey: pushKey.privateKeyPem, kid: crypto.randomUUID().replaceAll("-", ""), ...googlePush }, ...pageSize },
			apple: { ...apple.emulator, ...(options.storePageSize === undefined ? {} : { historyPageSize: options.storePageSize }) },
			amazon: {
				apps: amazonApps.map((packageName) => ({ packageName, sharedSecret: amazonSecret })),
				sns: { url: snsUrl, privateKey: snsSigner.privateKeyPem, certificate: snsSigner.certificatePem, topicArn: AMAZON_TOPIC_ARN },
			},
			notify: { ...notifications, mode: options.notifyMode ?? "hold" },
			webhooks: { secrets: [webhookSecret, nextWebhookSecret] },
			access: { privateKey: accessKey.privateKeyPem, kid: crypto.randomUUID().replaceAll("-", ""), audience: SAMPLE_CONSOLE.accessAudience },
		},
	};
}

/** A Standard Webhooks secret: "whsec_" and the base64 of 32 random bytes. */
function newWebhookSecret(): string {
	return `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
}
