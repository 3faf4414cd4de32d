import { importPKCS8, importSPKI } from "jose";
import type { AppleApiKeyConfig, AppleEmulatorConfig, RegisteredServiceAccount } from "./config";

/** Keys from EMULATOR_CONFIG, imported once each: importing costs more than using them. */

const keys = new Map<string, Promise<CryptoKey>>();

function cached(id: string, load: () => Promise<CryptoKey>): Promise<CryptoKey> {
	let key = keys.get(id);
	if (!key) {
		key = load();
		keys.set(id, key);
	}
	return key;
}

/** Apple's signing key (the test PKI leaf's), for signed transactions and renewal info. */
export function appleSigningKey(config: AppleEmulatorConfig): Promise<CryptoKey> {
	if (!config.signing.privateKey) throw new Error("store emulator: EMULATOR_CONFIG.apple.signing is not set");
	return cached(`apple signing ${config.signing.privateKey}`, () => importPKCS8(config.signing.privateKey, "ES256"));
}

/** The public half of an App Store Connect API key, to check the service's bearer tokens. */
export function appleApiPublicKey(key: AppleApiKeyConfig): Promise<CryptoKey> {
	return cached(`apple api ${key.keyId} ${key.publicKey}`, () => importSPKI(key.publicKey, "ES256"));
}

/** A Google service account's public key, to check the assertions sent to the token endpoint. */
export function googlePublicKey(account: RegisteredServiceAccount): Promise<CryptoKey> {
	return cached(`google ${account.client_email} ${account.public_key}`, () => importSPKI(account.public_key, "RS256"));
}
