import * as z from "zod";
import type { TrustStore } from "../apple/chain";
import { createTrustStore, defaultTrustStore, InvalidTrustedRootError } from "../apple/roots";
import { allBucketKeys } from "../quota/buckets";

/**
 * The shape of APPS_CONFIG: every app this deployment serves, with its keys and store credentials.
 * Documented field by field in README "Configuration"; keep the two in step.
 */

const secret = (what: string) =>
	z.string({ error: `${what} is required` }).min(16, { error: `${what} must be at least 16 characters` });

const pkcs8Pem = (what: string) =>
	z
		.string({ error: `${what} is required` })
		.regex(/-----BEGIN PRIVATE KEY-----[\s\S]+-----END PRIVATE KEY-----/, {
			error: `${what} must be a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"); newlines may be written as \\n`,
		});

export const GoogleServiceAccountSchema = z.object({
	client_email: z.email({ error: "client_email must be the service account's e-mail address" }),
	private_key: pkcs8Pem("private_key"),
	private_key_id: z.string().optional(),
	token_uri: z.url({ protocol: /^https?$/, error: "token_uri must be an http(s) URL" }),
});

/**
 * Who may push Real-time Developer Notifications: the OIDC token Pub/Sub signs for an authenticated push
 * subscription names this audience and this service account.
 */
export const GooglePushSchema = z.object({
	audience: z.string({ error: "audience is required: the audience set on the Pub/Sub push subscription (by default its endpoint URL)" }).min(1),
	serviceAccountEmail: z.email({ error: "serviceAccountEmail must be the e-mail of the service account the push subscription authenticates as" }),
});

export const GoogleAppSchema = z.object({
	packageName: z.string().regex(/^[A-Za-z][\w]*(\.[A-Za-z][\w]*)+$/, { error: "packageName must look like com.example.app" }),
	serviceAccount: GoogleServiceAccountSchema,
	/** Real-time Developer Notifications for this app's package; without it (and without notifications.googlePush) they are refused. */
	push: GooglePushSchema.optional(),
});

export const AppleAppSchema = z.object({
	bundleId: z.string().min(1, { error: "bundleId is required" }),
	/** Apple's numeric app id; required because Production payloads are checked against it. */
	appAppleId: z.number().int().positive({ error: "appAppleId must be the app's numeric Apple ID" }),
	/** App Store Server API key (App Store Connect → Users and Access → Integrations → In-App Purchase). */
	api: z
		.object({
			issuerId: z.string().min(1),
			keyId: z.string().min(1),
			privateKey: pkcs8Pem("privateKey"),
		})
		.optional(),
	/** App-specific shared secret for verifyReceipt; only for apps without API credentials. */
	sharedSecret: secret("sharedSecret").optional(),
	/** Accept Xcode- and LocalTesting-signed data (no chain): development builds only. */
	allowLocalTesting: z.boolean().default(false),
	/** Ask the App Store Server API about every signed transaction, to catch refunds made after signing. */
	refreshSignedTransactions: z.boolean().default(false),
	/** The app sets appAccountToken to a UUID derived from its user id; refuse transactions bound to another user. */
	appAccountTokenIsUserUuid: z.boolean().default(false),
});

/**
 * Amazon Appstore (https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-android-apps.html): receipts are
 * verified with the Receipt Verification Service, whose URL carries the shared secret; its Real-time Notifications
 * name the app by package.
 */
export const AmazonAppSchema = z.object({
	/** The developer account's shared secret (Developer Console → Shared Key). Part of every RVS URL: never logged. */
	sharedSecret: secret("sharedSecret"),
	/** Ask the RVS Cloud Sandbox ({endpoints.amazon}/sandbox/...), for receipts App Tester makes. */
	sandbox: z.boolean().default(false),
	/** The app's package name, which Amazon's Real-time Notifications name it by; without it they are refused. */
	packageName: z
		.string()
		.regex(/^[A-Za-z][\w]*(\.[A-Za-z][\w]*)+$/, { error: "packageName must look like com.example.app" })
		.optional(),
});

/**
 * A host name an SNS certificate or subscription URL may name: a name, or one whose labels may be `*` (one label of
 * letters, digits and hyphens), as in the default `sns.*.amazonaws.com`.
 */
const hostPattern = z
	.string()
	.regex(/^(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?))*$/, { error: 'must be a lower-case host name, "*" standing for one label, e.g. "sns.*.amazonaws.com"' });

/**
 * Amazon's Real-time Notifications arrive through Amazon SNS: which hosts may serve the certificate a message is
 * signed with (and the URL that confirms the subscription), and optionally which topics may send them.
 */
export const AmazonSnsSchema = z.object({
	/** Default: Amazon SNS's own, https://sns.<region>.amazonaws.com. Plain http only for local hosts (localhost, *.test). */
	certificateHosts: z.array(hostPattern).min(1).default(["sns.*.amazonaws.com"]),
	/** When set, only these topics: a message (or subscription) from any other SNS topic is refused. */
	topicArns: z.array(z.string().regex(/^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]{1,256}$/, { error: "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)" })).min(1).optional(),
});

/**
 * Where webhooks may go: https, or plain http only to names that never leave this machine or a test network
 * (localhost, 127.0.0.1, [::1], *.localhost, *.test), for `npm run dev` and its emulator.
 */
const webhookUrl = z.url({ protocol: /^https?$/, error: "must be an https URL" }).refine(
	(u) => {
		const { protocol, hostname } = new URL(u);
		return protocol === "https:" || ["localhost", "127.0.0.1", "[::1]"].includes(hostname) || /\.(localhost|test)$/.test(hostname);
	},
	{ error: "must be an https URL (plain http only for localhost and *.test)" },
);

/** A Standard Webhooks signing secret: "whsec_" and the base64 of 24 to 64 random bytes. */
const webhookSecret = z.string().regex(/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/, { error: 'must be "whsec_" followed by the base64 of 24 to 64 random bytes' });

export const WebhookSchema = z.object({
	url: webhookUrl,
	/** One secret, or two while rotating: every delivery is signed with each. */
	secret: z.union([webhookSecret, z.array(webhookSecret).min(1).max(2)]).transform((s) => (Array.isArray(s) ? s : [s])),
	/** Event types to send: exact names, a family ("purchase.*"), or "*" (the default). */
	events: z
		.array(z.string().regex(/^(\*|[a-z]+\.\*|[a-z]+\.[a-z_]+)$/, { error: 'must be an event type, a family like "purchase.*", or "*"' }))
		.min(1)
		.default(["*"]),
});

/** One bucket's limit, overriding the store's published one (src/quota/buckets.ts) for accounts granted more. */
export const QuotaLimitSchema = z
	.object({
		limit: z.number({ error: "limit must be a whole number of calls" }).int().min(1, { error: "limit must be at least 1" }),
		periodSeconds: z.number({ error: "periodSeconds must be a whole number of seconds" }).int().min(1).max(86_400, { error: "periodSeconds must be 1 to 86400" }),
		/** How many calls may go at once after a quiet spell; default a tenth of the limit. */
		burst: z.number().int().min(1).optional(),
	})
	.refine((q) => q.burst === undefined || q.burst <= q.limit, { error: "burst must not exceed limit", path: ["burst"] });

/** How the service spends each store's request quota: see README "Store quotas". */
export const QuotasSchema = z.object({
	/** How long a verification may wait for its turn before it is answered 503 with Retry-After (0 to 10000 ms). */
	maxWaitMs: z.number().int().min(0).max(10_000, { error: "maxWaitMs must be 0 to 10000" }).default(2_000),
	/** "<store>.<bucket>" → its limit, e.g. "google_play.subscriptions": {"limit": 6000, "periodSeconds": 60}. */
	limits: z.record(z.string(), QuotaLimitSchema).default({}),
});

const ageSeconds = (fallback: number) => z.number({ error: "must be a whole number of seconds" }).int().min(0).max(30 * 86_400, { error: "must be 0 to 2592000 (30 days)" }).default(fallback);

/** How old a store's answer may be and still answer a replay without asking the store again. */
const FreshnessAgesSchema = (oneTime: number, subscription: number) =>
	z.object({
		/** A one-time purchase that is acknowledged (nothing left for the store to undo on its own). */
		oneTimeSeconds: ageSeconds(oneTime),
		/** A subscription before its known expiry. */
		subscriptionSeconds: ageSeconds(subscription),
	});

export const FreshnessSchema = z.object({
	/**
	 * Whether each store's server notifications reach this service for the app, which keeps what the ledger holds
	 * current. Google defaults to whether Pub/Sub push is configured for it; the App Store to false (App Store Connect
	 * holds that setting, not this configuration); Amazon to whether the app names its package for Amazon's
	 * notifications (apps[].amazon.packageName).
	 */
	notifications: z.object({ google_play: z.boolean().optional(), app_store: z.boolean().optional(), amazon: z.boolean().optional() }).prefault({}),
	withNotifications: FreshnessAgesSchema(86_400, 86_400).prefault({}),
	withoutNotifications: FreshnessAgesSchema(900, 300).prefault({}),
});

export const ProductKindSchema = z.enum(["consumable", "non_consumable", "subscription"]);

export const AppSchema = z.object({
	id: z.union([z.string().min(1), z.number().int().transform(String)]),
	/** Bearer keys for the server API (/v1/...). Several, so keys can be rotated without downtime. */
	apiKeys: z.array(secret("each API key")).min(1, { error: "apiKeys needs at least one key" }),
	/** When set, /verify requires one of these as ?key= or the X-Verify-Key header. */
	verifyKeys: z.array(secret("each verify key")).optional(),
	/** Whether Sandbox (Apple) and test (Google license tester) purchases grant access. Explicit on purpose. */
	acceptSandbox: z.boolean({ error: "acceptSandbox must be true or false (see README: Sandbox policy)" }),
	/** Optional catalogue: product id → kind. Decides consumable vs non-consumable where the store does not say. */
	products: z.record(z.string(), ProductKindSchema).default({}),
	/**
	 * Entitlement id → the products that unlock it. A product may unlock several. When the app lists a products
	 * catalogue, it is taken to be complete: every product named here must be in it.
	 */
	entitlements: z
		.record(
			z.string().regex(/^[A-Za-z0-9][\w.:-]{0,63}$/, { error: "entitlement ids are 1-64 letters, digits, '_', '.', ':' or '-'" }),
			z.array(z.string().min(1).max(256)).min(1, { error: "an entitlement needs at least one product" }),
		)
		.default({}),
	/**
	 * Who owns a purchase someone else restores: "first_user" keeps it with the first user to claim it (refusing
	 * others, the receipt-sharing guard); "transfer_on_restore" moves it to the user restoring it.
	 */
	ownership: z.enum(["first_user", "transfer_on_restore"], { error: 'ownership must be "first_user" or "transfer_on_restore"' }).default("first_user"),
	/** Endpoints that receive this app's events, signed as Standard Webhooks specifies. */
	webhooks: z.array(WebhookSchema).max(10).default([]),
	/** Live tokens (POST /v1/users/{id}/live-token): how long one lasts. Signed with a key derived from the app's API keys. */
	liveTokenSeconds: z.number().int().min(30).max(3600).default(300),
	/** The stores' request limits this app is held to, and how long a verification may wait for its turn. */
	quotas: QuotasSchema.prefault({}),
	/** When a replay may be answered from what the ledger knows, with no store call. */
	freshness: FreshnessSchema.prefault({}),
	google: GoogleAppSchema.optional(),
	apple: AppleAppSchema.optional(),
	amazon: AmazonAppSchema.optional(),
});

/** Which apps a console user may see: "*" for all, or app ids. */
const consoleApps = z.union([z.literal("*"), z.array(z.union([z.string().min(1), z.number().int().transform(String)])).min(1)], {
	error: 'apps must be "*" (every app) or a list of app ids',
});

/** A console key: exchanged at the console's sign-in form for a session. Its name is what the audit trail shows. */
export const ConsoleKeySchema = z.object({
	name: z.string().regex(/^[\w.@+-]{1,64}$/, { error: "name must be 1-64 letters, digits or _ . @ + -: the audit trail shows it" }),
	key: secret("key"),
	apps: consoleApps,
});

/**
 * Cloudflare Access in front of /console: every request carries Access's JWT (Cf-Access-Jwt-Assertion), verified
 * against the team's keys (<teamDomain>/cdn-cgi/access/certs), issuer and the application's audience tag.
 */
export const ConsoleAccessSchema = z.object({
	teamDomain: z
		.url({ protocol: /^https?$/, error: "teamDomain must be the team's URL, e.g. https://your-team.cloudflareaccess.com" })
		.refine((u) => u.startsWith("https://") || /^http:\/\/(localhost|127\.0\.0\.1|[^/]+\.test)(:\d+)?(\/|$)/.test(u), { error: "teamDomain must be an https URL" })
		.transform((u) => u.replace(/\/+$/, "")),
	audience: z.string({ error: "audience is required: the Access application's Application Audience (AUD) tag" }).min(1),
	/** Who may use the console, by the e-mail Access vouches for: an address, "*@example.com", or "*". */
	users: z
		.array(z.object({ email: z.string().regex(/^(\*|\*@[^@\s]+|[^@\s*]+@[^@\s]+)$/, { error: 'email must be an address, "*@domain" or "*"' }), apps: consoleApps }))
		.min(1, { error: "users needs at least one entry: who may use the console, and which apps they see" }),
});

export const ConsoleSchema = z.object({
	keys: z.array(ConsoleKeySchema).default([]),
	access: ConsoleAccessSchema.optional(),
	/** How long a console-key session lasts. */
	sessionSeconds: z.number().int().min(300).max(7 * 86400).default(8 * 3600),
});

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).transform((u) => u.replace(/\/+$/, ""));

export const EndpointsSchema = z.object({
	googlePlay: httpUrl.default("https://androidpublisher.googleapis.com"),
	appleProduction: httpUrl.default("https://api.storekit.apple.com"),
	appleSandbox: httpUrl.default("https://api.storekit-sandbox.apple.com"),
	appleReceiptProduction: httpUrl.default("https://buy.itunes.apple.com/verifyReceipt"),
	appleReceiptSandbox: httpUrl.default("https://sandbox.itunes.apple.com/verifyReceipt"),
	/** Google's public keys for the OIDC tokens of Pub/Sub pushes. */
	googleCerts: httpUrl.default("https://www.googleapis.com/oauth2/v3/certs"),
	/** Amazon's Receipt Verification Service (production; the Cloud Sandbox is under /sandbox). */
	amazon: httpUrl.default("https://appstore-sdk.amazon.com"),
});

export const ConfigSchema = z
	.object({
		apps: z.array(AppSchema).min(1, { error: "apps needs at least one app" }),
		endpoints: EndpointsSchema.default(EndpointsSchema.parse({})),
		/** Seconds before a failed webhook delivery is retried the first time; each retry waits four times longer (at most an hour). */
		webhookRetrySeconds: z.number().int().min(0).max(3600).default(10),
		/** Milliseconds to wait for a store before answering "unreachable". */
		storeTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
		notifications: z
			.object({
				/** The push settings of every app that has none of its own (one Pub/Sub subscription for all packages). */
				googlePush: GooglePushSchema.optional(),
				/** Amazon's Real-time Notifications, delivered by Amazon SNS. */
				amazonSns: AmazonSnsSchema.default(AmazonSnsSchema.parse({})),
			})
			.default({ amazonSns: AmazonSnsSchema.parse({}) }),
		/** The support console (/console): who may sign in, and which apps each sees. Without it the console is closed. */
		console: ConsoleSchema.optional(),
		/** Base64 DER roots trusted for Apple signed data. Default: Apple Root CA - G3 only. */
		appleRootCertificates: z.array(z.string()).min(1, { error: "list at least one root, or leave the field out for Apple Root CA - G3" }).optional(),
	})
	.superRefine((config, ctx) => {
		const ids = new Set<string>();
		const keys = new Set<string>();
		const amazonPackages = new Set<string>();
		config.apps.forEach((app, i) => {
			if (ids.has(app.id)) ctx.addIssue({ code: "custom", path: ["apps", i, "id"], message: `duplicate app id "${app.id}"` });
			ids.add(app.id);
			app.apiKeys.forEach((key, k) => {
				if (keys.has(key)) ctx.addIssue({ code: "custom", path: ["apps", i, "apiKeys", k], message: "this API key is used twice; each key must name one app" });
				keys.add(key);
			});
			const amazonPackage = app.amazon?.packageName;
			if (amazonPackage !== undefined) {
				// Amazon's notifications name the app by package alone.
				if (amazonPackages.has(amazonPackage)) ctx.addIssue({ code: "custom", path: ["apps", i, "amazon", "packageName"], message: `package "${amazonPackage}" is named by two apps` });
				amazonPackages.add(amazonPackage);
			}
			const buckets = allBucketKeys();
			for (const key of Object.keys(app.quotas.limits)) {
				if (!buckets.includes(key)) ctx.addIssue({ code: "custom", path: ["apps", i, "quotas", "limits", key], message: `no such bucket; one of ${buckets.join(", ")}` });
			}
			const catalogue = Object.keys(app.products);
			if (catalogue.length > 0) {
				for (const [entitlement, products] of Object.entries(app.entitlements)) {
					products.forEach((product, p) => {
						if (!catalogue.includes(product)) {
							ctx.addIssue({ code: "custom", path: ["apps", i, "entitlements", entitlement, p], message: `product "${product}" is not in the app's products catalogue` });
						}
					});
				}
			}
		});
	})
	.superRefine((config, ctx) => {
		const apps = new Set(config.apps.map((a) => a.id));
		const apiKeys = new Set(config.apps.flatMap((a) => a.apiKeys));
		const names = new Set<string>();
		config.console?.keys.forEach((k, i) => {
			if (names.has(k.name)) ctx.addIssue({ code: "custom", path: ["console", "keys", i, "name"], message: `duplicate console key name "${k.name}"` });
			names.add(k.name);
			if (apiKeys.has(k.key)) ctx.addIssue({ code: "custom", path: ["console", "keys", i, "key"], message: "this key is also an API key; give the console keys of their own" });
			if (k.apps !== "*") k.apps.forEach((id, a) => apps.has(id) || ctx.addIssue({ code: "custom", path: ["console", "keys", i, "apps", a], message: `no app "${id}" is configured` }));
		});
		if (new Set(config.console?.keys.map((k) => k.key)).size !== (config.console?.keys.length ?? 0)) {
			ctx.addIssue({ code: "custom", path: ["console", "keys"], message: "two console keys are the same; each key must be its own" });
		}
		config.console?.access?.users.forEach((u, i) => {
			if (u.apps !== "*") u.apps.forEach((id, a) => apps.has(id) || ctx.addIssue({ code: "custom", path: ["console", "access", "users", i, "apps", a], message: `no app "${id}" is configured` }));
		});
	})
	.transform((config, ctx) => {
		// Roots are public, so the reason may be specific. Built here, once per loaded configuration, so a bad root is
		// reported at start-up rather than at the first App Store verification, and root keys are imported once.
		let appleTrustStore: TrustStore;
		try {
			appleTrustStore = config.appleRootCertificates ? createTrustStore(config.appleRootCertificates) : defaultTrustStore();
		} catch (err) {
			if (!(err instanceof InvalidTrustedRootError)) throw err;
			ctx.addIssue({ code: "custom", path: ["appleRootCertificates", err.index], message: err.message });
			return z.NEVER;
		}
		return { ...config, appleTrustStore };
	});

export type Config = z.output<typeof ConfigSchema>;
export type AppConfig = Config["apps"][number];
export type GoogleAppConfig = z.output<typeof GoogleAppSchema>;
export type GooglePushConfig = z.output<typeof GooglePushSchema>;
export type WebhookConfig = z.output<typeof WebhookSchema>;
export type GoogleServiceAccount = z.output<typeof GoogleServiceAccountSchema>;
export type AppleAppConfig = z.output<typeof AppleAppSchema>;
export type AmazonAppConfig = z.output<typeof AmazonAppSchema>;
export type AmazonSnsConfig = z.output<typeof AmazonSnsSchema>;
export type Endpoints = Config["endpoints"];
export type QuotasConfig = z.output<typeof QuotasSchema>;
export type FreshnessConfig = z.output<typeof FreshnessSchema>;
export type ConsoleConfig = z.output<typeof ConsoleSchema>;
