/**
 * Key material for tests and local development, generated fresh every time (never committed).
 * Runs in Node (vitest.config.ts, scripts/dev.ts) and in workerd alike: WebCrypto only.
 */

export function toPem(der: ArrayBuffer | Uint8Array, label: "PRIVATE KEY" | "PUBLIC KEY" | "CERTIFICATE"): string {
	const b64 = bytesToBase64(der instanceof Uint8Array ? der : new Uint8Array(der));
	const lines = b64.match(/.{1,64}/g) ?? [];
	return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

export function bytesToBase64(bytes: Uint8Array): string {
	let binary = "";
	for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
	return btoa(binary);
}

export interface PemKeyPair {
	privateKeyPem: string;
	publicKeyPem: string;
}

/** An RSA-2048 key pair like the one in a Google service-account JSON file. */
export async function generateRsaKeyPair(): Promise<PemKeyPair> {
	const pair = (await crypto.subtle.generateKey(
		{ name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
		true,
		["sign", "verify"],
	)) as CryptoKeyPair;
	return exportPair(pair);
}

/** A P-256 key pair like an App Store Connect .p8 key. */
export async function generateEcKeyPair(): Promise<PemKeyPair & { pair: CryptoKeyPair }> {
	const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
	return { ...(await exportPair(pair)), pair };
}

async function exportPair(pair: CryptoKeyPair): Promise<PemKeyPair> {
	const pkcs8 = (await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer;
	const spki = (await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer;
	return { privateKeyPem: toPem(pkcs8, "PRIVATE KEY"), publicKeyPem: toPem(spki, "PUBLIC KEY") };
}
