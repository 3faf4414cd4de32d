/**
 * Amazon's side of the emulator, made fresh for every test run and every `npm run dev`: the developer account's
 * shared secret (which RVS checks, and which must never reach a log), and Amazon SNS's signing key with a
 * self-signed certificate like the one SNS publishes at SigningCertURL (RSA, sha256WithRSAEncryption). WebCrypto
 * only: runs in Node (vitest.config.ts, scripts) and in workerd (tests that forge SNS messages).
 */
import { bitString, explicit, integer, nullValue, oid, printableString, sequence, set, time, utf8String, type Bytes } from "./der-writer.ts";
import { bytesToBase64, toPem } from "./keys.ts";

/** The test apps' Amazon packages (the sample app's is SAMPLE_APP.packageName). */
export const AMAZON_PACKAGES = {
	/** TEST_APPS.sandbox (acceptSandbox): asks the RVS Cloud Sandbox. */
	sandbox: "com.example.sandbox",
	events: "com.example.events",
	transfer: "com.example.transfer",
} as const;

/** A package of the same Amazon developer account that no app of this deployment serves. */
export const AMAZON_UNSERVED_PACKAGE = "com.example.amazon.elsewhere";

/** An app whose shared secret Amazon does not know: every RVS call answers 496. */
export const AMAZON_WRONG_SECRET_APP = { id: "amazon-wrong-secret-app", packageName: "com.example.amazon.wrongsecret", apiKey: "amazon-wrong-secret-api-key-0123" } as const;

/** The SNS topic Amazon's notifications come from, as the emulator plays it. */
export const AMAZON_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:iap-edge-emulator-rtn";

export interface SnsSigner {
	privateKeyPem: string;
	certificatePem: string;
}

/** Amazon SNS's key and the self-signed certificate the emulator serves at SigningCertURL. */
export async function createSnsSigner(commonName = "sns.amazonaws.com"): Promise<SnsSigner & { privateKey: CryptoKey }> {
	const pair = (await crypto.subtle.generateKey(
		{ name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
		true,
		["sign", "verify"],
	)) as CryptoKeyPair;
	const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
	const name = sequence(set(sequence(oid("2.5.4.3"), utf8String(commonName))), set(sequence(oid("2.5.4.10"), utf8String("Amazon (emulated)"))), set(sequence(oid("2.5.4.6"), printableString("US"))));
	const algorithm = sequence(oid("1.2.840.113549.1.1.11"), nullValue());
	const serial = crypto.getRandomValues(new Uint8Array(8));
	serial[0] = serial[0]! & 0x7f;
	const now = Date.now();
	const tbs = sequence(explicit(0, integer(2)), integer(serial), algorithm, name, sequence(time(now - 86_400_000), time(now + 365 * 86_400_000)), name, spki);
	const signature = new Uint8Array((await crypto.subtle.sign("RSASSA-PKCS1-v1_5", pair.privateKey, tbs)) as ArrayBuffer);
	const der: Bytes = sequence(tbs, algorithm, bitString(signature));
	const pkcs8 = (await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer;
	return { privateKeyPem: toPem(pkcs8, "PRIVATE KEY"), certificatePem: toPem(der, "CERTIFICATE"), privateKey: pair.privateKey };
}

/** A shared secret shaped like the Developer Console's ("2:<base64url>:<base64>=="), random every run. */
export function newSharedSecret(): string {
	const part = (n: number) => bytesToBase64(crypto.getRandomValues(new Uint8Array(n)));
	return `2:${part(48).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "")}:${part(16)}`;
}
