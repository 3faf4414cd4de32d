import type { Context } from "hono";
import * as z from "zod";

/**
 * EMULATOR_CONFIG: everything the emulator knows, as the real stores would, parsed once with zod. Written by
 * test/support/fixtures.ts (vitest.config.ts, scripts/dev.ts): only the public halves of the service's keys, and
 * Apple's own signing key for the test PKI. Missing parts default to empty, so a Google-only setup runs.
 */

const ServiceAccount = z.object({
	client_email: z.string(),
	/** SPKI PEM of the service account's RS256 key. */
	public_key: z.string(),
	/** Packages this account has Play Console access to. */
	packages: z.array(z.string()),
});

const AppleApiKey = z.object({
	keyId: z.string(),
	issuerId: z.string(),
	/** SPKI PEM of the App Store Connect key's public half. */
	publicKey: z.string(),
	/** The apps (bundle ids) this key may ask about. */
	bundleIds: z.array(z.string()),
});

const AppleApp = z.object({
	bundleId: z.string(),
	appAppleId: z.number().int(),
	/** The app-specific shared secret verifyReceipt checks. */
	sharedSecret: z.string().optional(),
});

const pageSize = z.number().int().min(1).max(1000);

const Apple = z.object({
	/** Apple's side of signed data: the test PKI leaf's private key (PKCS#8 PEM) and x5c = [leaf, intermediate, root]. */
	signing: z.object({ privateKey: z.string(), x5c: z.array(z.string()) }).default({ privateKey: "", x5c: [] }),
	apiKeys: z.array(AppleApiKey).default([]),
	apps: z.array(AppleApp).default([]),
	/** Get Notification History: notifications per page (Apple's own size is not documented; tests set 2 to page). */
	historyPageSize: pageSize.default(20),
});

/**
 * Pub/Sub's side of an authenticated push subscription: the key Google signs each push's OIDC token with
 * (published at GET /google/oauth2/v3/certs), the subscription's service account and audience.
 */
const GooglePush = z.object({
	/** PKCS#8 PEM of an RSA key (RS256). */
	privateKey: z.string(),
	kid: z.string(),
	serviceAccountEmail: z.string(),
	audience: z.string(),
});

const Google = z.object({
	serviceAccounts: z.array(ServiceAccount).default([]),
	/** Without it, pushes carry no Authorization header, as an unauthenticated push subscription's do. */
	push: GooglePush.optional(),
	/** voidedpurchases.list: the most voided purchases per page, whatever maxResults asks (tests set 2 to page). */
	voidedPageSize: pageSize.default(1000),
});

/** An Amazon developer account's app: the package, and the account's shared secret that RVS checks. */
const AmazonApp = z.object({ packageName: z.string(), sharedSecret: z.string() });

/**
 * Amazon SNS as Amazon's Real-time Notifications use it: the key SNS signs with, the certificate served at
 * SigningCertURL, where that (and SubscribeURL) live as the service sees them (https://sns.<region>.amazonaws.com/...
 * in tests, where every outbound fetch reaches the emulator; the emulator's own address under `npm run dev`), and
 * the topic messages come from.
 */
const AmazonSns = z.object({
	/** Base URL of the emulator's SNS endpoints (its /amazon/sns), as the service fetches them. */
	url: z.string(),
	/** PKCS#8 PEM of an RSA key. */
	privateKey: z.string(),
	/** PEM of the self-signed certificate for that key. */
	certificate: z.string(),
	topicArn: z.string(),
	/** "1": SHA1withRSA, as Amazon's RTN examples; "2": SHA256withRSA. */
	signatureVersion: z.enum(["1", "2"]).default("1"),
});

const Amazon = z.object({
	apps: z.array(AmazonApp).default([]),
	sns: AmazonSns.optional(),
});

/**
 * Where store notifications go. "push": the emulator POSTs each one itself and retries on failure (notify.ts).
 * "hold": they wait in the outbox for whoever calls GET /_emulator/outbox (tests: in the vitest pool the emulator
 * cannot reach the service's fetch handler).
 */
const Notify = z.object({
	appleUrl: z.string().optional(),
	googleUrl: z.string().optional(),
	amazonUrl: z.string().optional(),
	mode: z.enum(["push", "hold"]).default("hold"),
});

/** A store request limit (limits.ts): at most `limit` calls of `bucket` in any `periodSeconds`. */
const Limit = z.object({
	bucket: z.string(),
	limit: z.number().int().min(1),
	periodSeconds: z.number().int().min(1),
	match: z.string().default(""),
});
/** Cloudflare Access: the key it signs users' JWTs with (published at /access/cdn-cgi/access/certs) and the AUD tag. */
const Access = z.object({ privateKey: z.string(), kid: z.string(), audience: z.string() });

/** The webhook receiver's signing secrets (whsec_…), the same the service signs with. */
const Webhooks = z.object({ secrets: z.array(z.string()).default([]) });

const EmulatorConfig = z.object({
	google: Google.default({ serviceAccounts: [], voidedPageSize: 1000 }),
	apple: Apple.default({ signing: { privateKey: "", x5c: [] }, apiKeys: [], apps: [], historyPageSize: 20 }),
	amazon: Amazon.default({ apps: [] }),
	notify: Notify.default({ mode: "hold" }),
	webhooks: Webhooks.default({ secrets: [] }),
	limits: z.array(Limit).default([]),
	access: Access.optional(),
});

export type EmulatorConfig = z.output<typeof EmulatorConfig>;
export type RegisteredServiceAccount = z.output<typeof ServiceAccount>;
export type AppleEmulatorConfig = z.output<typeof Apple>;
export type AppleApiKeyConfig = z.output<typeof AppleApiKey>;
export type GooglePushConfig = z.output<typeof GooglePush>;
export type NotifyConfig = z.output<typeof Notify>;
export type AmazonEmulatorConfig = z.output<typeof Amazon>;
export type AmazonSnsConfig = z.output<typeof AmazonSns>;
export type AccessConfig = z.output<typeof Access>;

/** The emulator's bindings, as `wrangler types` generates them from test/emulator/wrangler.toml. */
export type EmulatorEnv = Env;

let parsed: { raw: string; config: EmulatorConfig } | undefined;

/** The configuration, parsed on first use (and again only if the binding changes). A bad one fails loudly. */
export function emulatorConfig(env: EmulatorEnv | undefined): EmulatorConfig {
	const raw = env?.EMULATOR_CONFIG || "{}";
	if (parsed?.raw === raw) return parsed.config;
	const result = EmulatorConfig.safeParse(JSON.parse(raw));
	if (!result.success) {
		const issue = result.error.issues[0]!;
		throw new Error(`store emulator: EMULATOR_CONFIG.${issue.path.join(".")}: ${issue.message}`);
	}
	parsed = { raw, config: result.data };
	return result.data;
}

/** The configuration of the Worker handling `c`. */
export function configOf(c: Context): EmulatorConfig {
	return emulatorConfig(c.env as EmulatorEnv | undefined);
}
