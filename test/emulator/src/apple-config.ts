import type { Context } from "hono";
import { importPKCS8, importSPKI } from "jose";

/**
 * EMULATOR_CONFIG.apple: what the App Store half of the emulator knows, as Apple would. Written by
 * test/support/apple-fixtures.ts; only public keys of the service's API keys, and Apple's own signing key.
 */
export interface AppleEmulatorConfig {
	/** Apple's side of signed data: the test PKI leaf's private key (PKCS#8 PEM) and x5c = [leaf, intermediate, root]. */
	signing: { privateKey: string; x5c: string[] };
	/** App Store Connect API keys: the public half, the issuer (team) and the apps (bundle ids) it may ask about. */
	apiKeys: { keyId: string; issuerId: string; publicKey: string; bundleIds: string[] }[];
	/** The apps of the team: appAppleId for receipts, the app-specific shared secret verifyReceipt checks. */
	apps: { bundleId: string; appAppleId: number; sharedSecret?: string }[];
}

const EMPTY: AppleEmulatorConfig = { signing: { privateKey: "", x5c: [] }, apiKeys: [], apps: [] };

let parsed: { raw: string; config: AppleEmulatorConfig } | undefined;

/** Parsed here rather than through index.ts, which imports the Apple modules: no import cycle. */
export function appleConfig(c: Context): AppleEmulatorConfig {
	const raw = String((c.env as { EMULATOR_CONFIG?: string } | undefined)?.EMULATOR_CONFIG ?? "{}");
	if (parsed?.raw !== raw) parsed = { raw, config: { ...EMPTY, ...(JSON.parse(raw || "{}") as { apple?: AppleEmulatorConfig }).apple } };
	return parsed.config;
}

const keys = new Map<string, Promise<CryptoKey>>();

function cached(id: string, load: () => Promise<CryptoKey>): Promise<CryptoKey> {
	let key = keys.get(id);
	if (!key) {
		key = load();
		keys.set(id, key);
	}
	return key;
}

export function signingKey(config: AppleEmulatorConfig): Promise<CryptoKey> {
	if (!config.signing.privateKey) throw new Error("store emulator: EMULATOR_CONFIG.apple.signing is not set");
	return cached(`signing ${config.signing.privateKey}`, () => importPKCS8(config.signing.privateKey, "ES256"));
}

export function apiPublicKey(key: AppleEmulatorConfig["apiKeys"][number]): Promise<CryptoKey> {
	return cached(`api ${key.keyId} ${key.publicKey}`, () => importSPKI(key.publicKey, "ES256"));
}
