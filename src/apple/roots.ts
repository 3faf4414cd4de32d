/**
 * The roots Apple signed data may chain to. By default only Apple Root CA - G3, the root of every App Store
 * signing chain (https://www.apple.com/certificateauthority/); configuration may replace the list, e.g. with a test
 * PKI's root.
 */
import type { TrustedRoot, TrustStore } from "./chain";
import { certificateBase64ToBytes } from "./der";
import { AppleVerificationError } from "./errors";
import { CURVES, importPublicKey, Oid, parseCertificateBase64, type Certificate } from "./x509";

/**
 * Apple Root CA - G3, DER as base64: https://www.apple.com/certificateauthority/AppleRootCA-G3.cer,
 * SHA-256 fingerprint 63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79
 * (test/apple-chain.test.ts checks it), EC P-384, valid 2014-04-30 to 2039-04-30.
 */
export const APPLE_ROOT_CA_G3 = [
	"MIICQzCCAcmgAwIBAgIILcX8iNLFS5UwCgYIKoZIzj0EAwMwZzEbMBkGA1UEAwwSQXBwbGUgUm9vdCBDQSAtIEczMSYwJAYDVQQL",
	"DB1BcHBsZSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTETMBEGA1UECgwKQXBwbGUgSW5jLjELMAkGA1UEBhMCVVMwHhcNMTQwNDMw",
	"MTgxOTA2WhcNMzkwNDMwMTgxOTA2WjBnMRswGQYDVQQDDBJBcHBsZSBSb290IENBIC0gRzMxJjAkBgNVBAsMHUFwcGxlIENlcnRp",
	"ZmljYXRpb24gQXV0aG9yaXR5MRMwEQYDVQQKDApBcHBsZSBJbmMuMQswCQYDVQQGEwJVUzB2MBAGByqGSM49AgEGBSuBBAAiA2IA",
	"BJjpLz1AcqTtkyJygRMc3RCV8cWjTnHcFBbZDuWmBSp3ZHtfTjjTuxxEtX/1H7YyYl3J6YRbTzBPEVoA/VhYDKX1DyxNB0cTddqX",
	"l5dvMVztK517IDvYuVTZXpmkOlEKMaNCMEAwHQYDVR0OBBYEFLuw3qFYM4iapIqZ3r6966/ayySrMA8GA1UdEwEB/wQFMAMBAf8w",
	"DgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMDA2gAMGUCMQCD6cHEFl4aXTQY2e3v9GwOAEZLuN+yRhHFD/3meoyhpmvOwgPUnPWT",
	"xnS4at+qIxUCMG1mihDK1A3UT82NQz60imOlM27jbdoXt2QfyFMm+YhidDkLF1vLUagM6BgD56KyKA==",
].join("");

/**
 * Apple Worldwide Developer Relations Certification Authority - G6, DER as base64:
 * https://www.apple.com/certificateauthority/AppleWWDRCAG6.cer, EC P-384, valid 2021-03-17 to 2036-03-19. It issues
 * the App Store's receipt-signing leaves.
 */
export const APPLE_WWDR_CA_G6 = [
	"MIIDFjCCApygAwIBAgIUIsGhRwp0c2nvU4YSycafPTjzbNcwCgYIKoZIzj0EAwMwZzEbMBkGA1UEAwwSQXBwbGUgUm9vdCBDQSAt",
	"IEczMSYwJAYDVQQLDB1BcHBsZSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTETMBEGA1UECgwKQXBwbGUgSW5jLjELMAkGA1UEBhMC",
	"VVMwHhcNMjEwMzE3MjAzNzEwWhcNMzYwMzE5MDAwMDAwWjB1MUQwQgYDVQQDDDtBcHBsZSBXb3JsZHdpZGUgRGV2ZWxvcGVyIFJl",
	"bGF0aW9ucyBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTELMAkGA1UECwwCRzYxEzARBgNVBAoMCkFwcGxlIEluYy4xCzAJBgNVBAYT",
	"AlVTMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEbsQKC94PrlWmZXnXgtxzdVJL8T0SGYngDRGpngn3N6PT8JMEb7FDi4bBmPhCnZ3/",
	"sq6PF/cGcKXWsL5vOteRhyJ45x3ASP7cOB+aao90fcpxSv/EZFbniAbNgZGhIhpIo4H6MIH3MBIGA1UdEwEB/wQIMAYBAf8CAQAw",
	"HwYDVR0jBBgwFoAUu7DeoVgziJqkipnevr3rr9rLJKswRgYIKwYBBQUHAQEEOjA4MDYGCCsGAQUFBzABhipodHRwOi8vb2NzcC5h",
	"cHBsZS5jb20vb2NzcDAzLWFwcGxlcm9vdGNhZzMwNwYDVR0fBDAwLjAsoCqgKIYmaHR0cDovL2NybC5hcHBsZS5jb20vYXBwbGVy",
	"b290Y2FnMy5jcmwwHQYDVR0OBBYEFD8vlCNR01DJmig97bB85c+lkGKZMA4GA1UdDwEB/wQEAwIBBjAQBgoqhkiG92NkBgIBBAIF",
	"ADAKBggqhkjOPQQDAwNoADBlAjBAXhSq5IyKogMCPtw490BaB677CaEGJXufQB/EqZGd6CSjiCtOnuMTbXVXmxxcxfkCMQDTSPxa",
	"rZXvNrkxU3TkUMI33yzvFVVRT4wxWJC994OsdcZ4+RGNsYDyR5gmdr0nDGg=",
].join("");

/**
 * Intermediates whose signature by a root is a fact about fixed bytes, checked once when the code is built
 * (test/apple-chain.test.ts verifies every pair with WebCrypto) rather than once in every new isolate. A trust
 * store that holds the root, byte for byte as written here, skips that one signature check for that intermediate,
 * text for text; everything else about the chain (the intermediate's own checks, the leaf's signature, validity
 * at the signing date) is still checked on every new chain.
 */
export const PREVERIFIED_INTERMEDIATES: readonly { readonly root: string; readonly intermediate: string }[] = [
	{ root: APPLE_ROOT_CA_G3, intermediate: APPLE_WWDR_CA_G6 },
];

export const DEFAULT_APPLE_ROOTS: readonly string[] = [APPLE_ROOT_CA_G3];

/** A configured root that cannot be used. Raised while loading configuration, never while verifying. */
export class InvalidTrustedRootError extends Error {
	constructor(
		readonly index: number,
		reason: string,
	) {
		super(`Apple root certificate [${index}] ${reason}`);
		this.name = "InvalidTrustedRootError";
	}
}

/** Stores built in this isolate, by their roots' text: the same roots give the same store, keys and caches. */
const stores = new Map<string, TrustStore>();
const MAX_STORES = 8;

/**
 * Builds a trust store from base64 DER certificates (configuration's appleRootCertificates), or Apple's default.
 * Refuses, by throwing, anything that is not a certificate with an EC P-256/P-384 key: a typo in configuration
 * should stop the deployment, not make every purchase fail later. Built once per isolate for a given list, so each
 * root is parsed, and its key imported, once per isolate, and a configuration parsed again (its secret changed)
 * keeps the chains verified so far if its roots did not change.
 */
export function createTrustStore(base64Roots: readonly string[] = DEFAULT_APPLE_ROOTS): TrustStore {
	if (base64Roots.length === 0) throw new InvalidTrustedRootError(0, "list is empty: no Apple signed data could ever verify");
	// Tolerate what copying a certificate by hand adds: PEM armour and line breaks.
	const texts = base64Roots.map((base64) => (isBare(base64) ? base64 : base64.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, "")));
	const key = texts.join(",");
	const existing = stores.get(key);
	if (existing) return existing;
	const roots = texts.map((text, index) => trustedRoot(parseRoot(text, index)));
	const preverified = new Map<string, TrustedRoot>();
	for (const { root, intermediate } of PREVERIFIED_INTERMEDIATES) {
		const index = texts.indexOf(root);
		if (index >= 0) preverified.set(intermediate, roots[index]!);
	}
	const store: TrustStore = preverified.size > 0 ? { roots, preverifiedIntermediates: preverified } : { roots };
	if (stores.size >= MAX_STORES) stores.delete(stores.keys().next().value!);
	stores.set(key, store);
	return store;
}

/** Base64 with nothing to strip (the usual case): no armour, no whitespace, so no regular expression to compile. */
function isBare(text: string): boolean {
	try {
		certificateBase64ToBytes(text);
		return true;
	} catch {
		return false;
	}
}

/** The default store: Apple Root CA - G3. */
export function defaultTrustStore(): TrustStore {
	return createTrustStore();
}

function parseRoot(base64: string, index: number): Certificate {
	let certificate: Certificate;
	try {
		certificate = parseCertificateBase64(base64);
	} catch (error) {
		if (error instanceof AppleVerificationError) throw new InvalidTrustedRootError(index, `is not a base64 DER X.509 certificate (${error.message})`);
		throw error;
	}
	if (certificate.publicKeyAlgorithm !== Oid.EC_PUBLIC_KEY || !CURVES[certificate.curve ?? ""]) {
		throw new InvalidTrustedRootError(index, "does not have an EC P-256 or P-384 key");
	}
	return certificate;
}

function trustedRoot(certificate: Certificate): TrustedRoot {
	let key: Promise<CryptoKey> | undefined;
	return { certificate, publicKey: () => (key ??= importPublicKey(certificate)) };
}
