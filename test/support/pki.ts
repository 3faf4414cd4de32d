/**
 * An Apple-shaped test PKI, made fresh at test time: a root, a WWDR-like intermediate and an App Store
 * signing leaf, with the extensions Apple's verifier looks for, and options to get each of them wrong.
 * WebCrypto only, so it runs in workerd (the tests), in Node (vitest.config.ts, scripts, the benchmark).
 */
import { bitString, boolean, explicit, integer, nullValue, octetString, oid, printableString, sequence, set, time, tlv, utf8String, type Bytes } from "./der-writer.ts";
import { bytesToBase64, toPem } from "./keys.ts";

/** Repeated from src/apple/chain.ts on purpose: this file must load in Node without the src bundler. */
export const APPLE_LEAF_OID = "1.2.840.113635.100.6.11.1";
export const APPLE_INTERMEDIATE_OID = "1.2.840.113635.100.6.2.1";

export type Curve = "P-256" | "P-384";
export type SignatureHash = "SHA-256" | "SHA-384" | "SHA-512";

export interface CertificateSpec {
	commonName?: string;
	/** This certificate's own key. */
	curve?: Curve;
	/** The hash its issuer signs it with (ecdsa-with-SHA…). */
	hash?: SignatureHash;
	notBefore?: number;
	notAfter?: number;
	/** basicConstraints cA. */
	ca?: boolean;
	/** Apple's marker extension OID; null leaves it out. */
	appleOid?: string | null;
	/** Further NULL-valued extensions, e.g. both Apple OIDs on one forged certificate. */
	extraOids?: string[];
	/** Names this issuer instead of the real one, whose key still signs: a chain whose names do not link. */
	issuerCommonName?: string;
}

export interface ApplePkiOptions {
	root?: CertificateSpec;
	intermediate?: CertificateSpec;
	/** `selfSigned`: the leaf names and signs itself instead of being issued by the intermediate. */
	leaf?: CertificateSpec & { selfSigned?: boolean };
}

export interface IssuedCertificate {
	der: Bytes;
	/** Standard base64, as in an x5c header. */
	base64: string;
	keyPair: CryptoKeyPair;
	privateKeyPkcs8Pem: string;
	/** The DER Name it was issued to, for issuing further certificates from it. */
	subject: Bytes;
	/** subjectKeyIdentifier: SHA-1 of the public key, which OpenSSL's strict mode wants linked by AKID. */
	keyIdentifier: Bytes;
	curve: Curve;
}

export interface ApplePki {
	root: IssuedCertificate;
	intermediate: IssuedCertificate;
	leaf: IssuedCertificate;
	x5c: [leaf: string, intermediate: string, root: string];
}

const DAY = 24 * 60 * 60 * 1000;

const DEFAULTS = {
	root: { commonName: "Test Apple Root CA - G3", curve: "P-384", hash: "SHA-384", ca: true, appleOid: null },
	intermediate: { commonName: "Test Apple Worldwide Developer Relations CA - G6", curve: "P-384", hash: "SHA-384", ca: true, appleOid: APPLE_INTERMEDIATE_OID },
	leaf: { commonName: "Test Prod ECC Mac App Store and iTunes Store Receipt Signing", curve: "P-256", hash: "SHA-384", ca: false, appleOid: APPLE_LEAF_OID },
} as const satisfies Record<string, CertificateSpec>;

export async function createApplePki(options: ApplePkiOptions = {}): Promise<ApplePki> {
	const root = await issueCertificate({ ...DEFAULTS.root, ...options.root });
	const intermediate = await issueCertificate({ ...DEFAULTS.intermediate, ...options.intermediate }, root);
	const { selfSigned, ...leafSpec } = options.leaf ?? {};
	const leaf = await issueCertificate({ ...DEFAULTS.leaf, ...leafSpec }, selfSigned ? undefined : intermediate);
	return { root, intermediate, leaf, x5c: [leaf.base64, intermediate.base64, root.base64] };
}

const SIGNATURE_OIDS: Record<SignatureHash, string> = {
	"SHA-256": "1.2.840.10045.4.3.2",
	"SHA-384": "1.2.840.10045.4.3.3",
	"SHA-512": "1.2.840.10045.4.3.4",
};

/** Issues one X.509 v3 certificate, by `issuer` or, without one, self-signed. */
export async function issueCertificate(spec: CertificateSpec, issuer?: IssuedCertificate): Promise<IssuedCertificate> {
	const curve = spec.curve ?? "P-256";
	const hash = spec.hash ?? "SHA-256";
	const now = Date.now();
	const keyPair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: curve }, true, ["sign", "verify"])) as CryptoKeyPair;
	const spki = new Uint8Array((await crypto.subtle.exportKey("spki", keyPair.publicKey)) as ArrayBuffer);
	const point = (await crypto.subtle.exportKey("raw", keyPair.publicKey)) as ArrayBuffer;
	const keyIdentifier = new Uint8Array(await crypto.subtle.digest("SHA-1", point));
	const subject = appleName(spec.commonName ?? "Test certificate");
	const serial = crypto.getRandomValues(new Uint8Array(8));
	serial[0] = serial[0]! & 0x7f;

	const extensions = [
		sequence(oid("2.5.29.19"), boolean(true), octetString(spec.ca ? sequence(boolean(true)) : sequence())),
		// keyUsage keyCertSign+cRLSign or digitalSignature, as named-bit BIT STRINGs (trailing zero bits unused).
		sequence(oid("2.5.29.15"), boolean(true), octetString(tlv(0x03, spec.ca ? Uint8Array.of(1, 0x06) : Uint8Array.of(7, 0x80)))),
		sequence(oid("2.5.29.14"), octetString(octetString(keyIdentifier))),
		sequence(oid("2.5.29.35"), octetString(sequence(tlv(0x80, issuer?.keyIdentifier ?? keyIdentifier)))),
		...[...(spec.appleOid ? [spec.appleOid] : []), ...(spec.extraOids ?? [])].map((id) => sequence(oid(id), octetString(nullValue()))),
	];
	const algorithm = sequence(oid(SIGNATURE_OIDS[hash]));
	const tbs = sequence(
		explicit(0, integer(2)),
		integer(serial),
		algorithm,
		spec.issuerCommonName ? appleName(spec.issuerCommonName) : (issuer?.subject ?? subject),
		sequence(time(spec.notBefore ?? now - 30 * DAY), time(spec.notAfter ?? now + 365 * DAY)),
		subject,
		spki,
		explicit(3, sequence(...extensions)),
	);
	const signer = issuer?.keyPair.privateKey ?? keyPair.privateKey;
	const signature = new Uint8Array((await crypto.subtle.sign({ name: "ECDSA", hash }, signer, tbs)) as ArrayBuffer);
	const half = signature.length / 2;
	const der = sequence(tbs, algorithm, bitString(sequence(integer(signature.subarray(0, half)), integer(signature.subarray(half)))));
	const pkcs8 = (await crypto.subtle.exportKey("pkcs8", keyPair.privateKey)) as ArrayBuffer;
	return { der, base64: bytesToBase64(der), keyPair, privateKeyPkcs8Pem: toPem(pkcs8, "PRIVATE KEY"), subject, keyIdentifier, curve };
}

function appleName(commonName: string): Bytes {
	const attribute = (type: string, value: Uint8Array) => set(sequence(oid(type), value));
	return sequence(
		attribute("2.5.4.3", utf8String(commonName)),
		attribute("2.5.4.11", utf8String("Apple Worldwide Developer Relations (test)")),
		attribute("2.5.4.10", utf8String("Apple Inc.")),
		attribute("2.5.4.6", printableString("US")),
	);
}

export function base64Url(data: Uint8Array | string): string {
	const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
	return bytesToBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * A compact ES256 JWS as the App Store makes them: header `{ alg: "ES256", x5c }`. An override whose value is
 * undefined removes that header field.
 */
export async function signJws(payload: unknown, privateKey: CryptoKey, x5c: readonly string[], headerOverrides: Record<string, unknown> = {}): Promise<string> {
	const header = Object.fromEntries(Object.entries({ alg: "ES256", x5c, ...headerOverrides }).filter(([, value]) => value !== undefined));
	const signingInput = `${base64Url(JSON.stringify(header))}.${base64Url(JSON.stringify(payload))}`;
	const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(signingInput));
	return `${signingInput}.${base64Url(new Uint8Array(signature as ArrayBuffer))}`;
}
