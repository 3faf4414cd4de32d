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

const Apple = z.object({
	/** Apple's side of signed data: the test PKI leaf's private key (PKCS#8 PEM) and x5c = [leaf, intermediate, root]. */
	signing: z.object({ privateKey: z.string(), x5c: z.array(z.string()) }).default({ privateKey: "", x5c: [] }),
	apiKeys: z.array(AppleApiKey).default([]),
	apps: z.array(AppleApp).default([]),
});

const EmulatorConfig = z.object({
	google: z.object({ serviceAccounts: z.array(ServiceAccount).default([]) }).default({ serviceAccounts: [] }),
	apple: Apple.default({ signing: { privateKey: "", x5c: [] }, apiKeys: [], apps: [] }),
});

export type EmulatorConfig = z.output<typeof EmulatorConfig>;
export type RegisteredServiceAccount = z.output<typeof ServiceAccount>;
export type AppleEmulatorConfig = z.output<typeof Apple>;
export type AppleApiKeyConfig = z.output<typeof AppleApiKey>;

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
