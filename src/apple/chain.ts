/**
 * The certificate-chain half of Apple's SignedDataVerifier (https://github.com/apple/app-store-server-library-node),
 * offline: x5c must be exactly leaf → intermediate → root, the root is one we were configured to trust (x5c[2] is
 * never trusted), each link is named after and signed by the next, and every certificate was valid when the data
 * was signed. Apple's certificates and their roles: https://www.apple.com/certificateauthority/
 */
import { DerCursor, DerError, readSingle, Tag, type Bytes } from "./der";
import { AppleVerificationError } from "./errors";
import { bytesEqual, CURVES, importPublicKey, Oid, parseCertificateBase64, type Certificate } from "./x509";

/** Apple's mark on the App Store receipt-signing leaf; without it any Apple-issued certificate could sign purchases. */
export const APPLE_LEAF_OID = "1.2.840.113635.100.6.11.1";
/** Apple's mark on the WWDR intermediate that issues those leaves. */
export const APPLE_INTERMEDIATE_OID = "1.2.840.113635.100.6.2.1";
/** The clock skew Apple's libraries allow at either end of a validity window. */
export const MAX_CLOCK_SKEW_MS = 60_000;

const CACHE_TTL_MS = 60 * 60 * 1000;
const CACHE_MAX_ENTRIES = 64;
const MAX_INTERMEDIATES_PER_STORE = 16;

export interface TrustedRoot {
	readonly certificate: Certificate;
	/** Imported once per trust store, on first use. */
	publicKey(): Promise<CryptoKey>;
}

export interface TrustStore {
	readonly roots: readonly TrustedRoot[];
	/**
	 * Intermediates (standard base64 DER, as in x5c) whose signature by one of these roots was verified when the
	 * code was built, not at run time: roots.ts lists them for Apple Root CA - G3 and test/apple-chain.test.ts
	 * verifies each one. Only ever filled by createTrustStore, for a root it holds byte for byte.
	 */
	readonly preverifiedIntermediates?: ReadonlyMap<string, TrustedRoot>;
}

interface Validity {
	readonly which: "leaf" | "intermediate" | "root";
	readonly notBefore: number;
	readonly notAfter: number;
}

interface CachedChain {
	readonly intermediate: string;
	readonly store: TrustStore;
	readonly leafKey: CryptoKey;
	/** Kept so a cached chain is still refused for data signed outside its certificates' lifetimes. */
	readonly validity: readonly Validity[];
	readonly expiresAt: number;
}

/** An intermediate whose own checks and signature by `root` passed in this isolate, for this trust store. */
interface VerifiedIntermediate {
	readonly certificate: Certificate;
	readonly key: CryptoKey;
	readonly root: TrustedRoot;
	readonly expiresAt: number;
}

/**
 * Verified chains, keyed by the leaf's base64 text as it arrived rather than by a digest of the entries: a Map
 * lookup with that text costs a fraction of a SHA-256 of it (bench/README.md). A hit also needs the same
 * intermediate text and the same trust store, so a chain verified against one set of roots is never accepted for
 * another.
 */
const cache = new Map<string, CachedChain>();

/**
 * Verified intermediates, per trust store and keyed by their base64 text: a new leaf under an intermediate this
 * isolate has already checked costs one signature verification (the leaf's), not two, and no key import for the
 * intermediate. Only intermediates a trusted root really signed get here, so the map cannot be filled with junk.
 */
let intermediates = new WeakMap<TrustStore, Map<string, VerifiedIntermediate>>();

/** Test and benchmark hook: forget every verified chain and intermediate (not the roots' imported keys). */
export function clearChainCache(): void {
	cache.clear();
	intermediates = new WeakMap();
}

/**
 * Verifies x5c against `store` at `effectiveDate` (ms) and returns the leaf's ES256 key. `now` (ms) only ages the
 * caches. A cached chain costs no parsing and no signature check, just the validity comparison.
 */
export async function verifyCertificateChain(x5c: readonly unknown[], store: TrustStore, effectiveDate: number, now: number = Date.now()): Promise<CryptoKey> {
	if (x5c.length !== 3) {
		throw new AppleVerificationError("invalid_chain_length", `x5c holds ${x5c.length} certificates; Apple's hold exactly 3 (leaf, intermediate, root)`);
	}
	const [leaf, intermediate, root] = x5c;
	if (typeof leaf !== "string" || typeof intermediate !== "string" || typeof root !== "string") {
		throw new AppleVerificationError("malformed", "x5c entries must be base64 strings");
	}
	const cached = cache.get(leaf);
	if (cached && cached.intermediate === intermediate && cached.store === store && now < cached.expiresAt) {
		assertValidAt(cached.validity, effectiveDate);
		return cached.leafKey;
	}
	const { leafKey, validity } = await verifyUncached(leaf, intermediate, store, effectiveDate, now);
	remember(leaf, { intermediate, store, leafKey, validity, expiresAt: Math.min(now + CACHE_TTL_MS, ...validity.map((v) => v.notAfter)) }, now);
	return leafKey;
}

async function verifyUncached(leafBase64: string, intermediateBase64: string, store: TrustStore, effectiveDate: number, now: number) {
	const leaf = parseCertificateBase64(leafBase64);
	const known = knownIntermediate(store, intermediateBase64, now);
	const intermediate = known?.certificate ?? parseCertificateBase64(intermediateBase64);

	if (!leaf.extensions.has(APPLE_LEAF_OID)) {
		throw new AppleVerificationError("missing_apple_oid", `the leaf lacks Apple's App Store signing extension ${APPLE_LEAF_OID}`);
	}
	if (!known) checkIntermediate(intermediate);
	if (leaf.publicKeyAlgorithm !== Oid.EC_PUBLIC_KEY || leaf.curve !== Oid.P256) {
		throw new AppleVerificationError("unsupported_algorithm", "the leaf key is not EC P-256, so it cannot have made an ES256 signature");
	}
	if (!bytesEqual(leaf.issuer, intermediate.subject)) {
		throw new AppleVerificationError("untrusted_chain", "the leaf's issuer is not the intermediate's subject");
	}

	let verified: VerifiedIntermediate | undefined = known;
	let leafSigned: boolean;
	let leafKey: CryptoKey;
	if (verified) {
		[leafSigned, leafKey] = await Promise.all([isSignedBy(leaf, intermediate, verified.key), importPublicKey(leaf)]);
	} else {
		const candidates = store.roots.filter((root) => bytesEqual(root.certificate.subject, intermediate.issuer));
		if (candidates.length === 0) throw new AppleVerificationError("untrusted_chain", "no trusted root is named as the intermediate's issuer");
		const [intermediateKey, key] = await Promise.all([importPublicKey(intermediate), importPublicKey(leaf)]);
		leafKey = key;
		const preverified = store.preverifiedIntermediates?.get(intermediateBase64);
		const [signed, root] = await Promise.all([
			isSignedBy(leaf, intermediate, intermediateKey),
			preverified && candidates.includes(preverified) ? preverified : findIssuingRoot(intermediate, candidates),
		]);
		leafSigned = signed;
		if (root) {
			verified = { certificate: intermediate, key: intermediateKey, root, expiresAt: Math.min(now + CACHE_TTL_MS, intermediate.notAfter, root.certificate.notAfter) };
			rememberIntermediate(store, intermediateBase64, verified, now);
		}
	}
	if (!leafSigned) throw new AppleVerificationError("untrusted_chain", "the leaf's signature does not verify with the intermediate's key");
	if (!verified) throw new AppleVerificationError("untrusted_chain", "the intermediate's signature does not verify with any trusted root's key");

	const validity: Validity[] = [
		{ which: "leaf", notBefore: leaf.notBefore, notAfter: leaf.notAfter },
		{ which: "intermediate", notBefore: intermediate.notBefore, notAfter: intermediate.notAfter },
		{ which: "root", notBefore: verified.root.certificate.notBefore, notAfter: verified.root.certificate.notAfter },
	];
	assertValidAt(validity, effectiveDate);
	return { leafKey, validity };
}

/** What Apple's verifier requires of the intermediate itself, before any signature is checked. */
function checkIntermediate(intermediate: Certificate): void {
	if (!intermediate.extensions.has(APPLE_INTERMEDIATE_OID)) {
		throw new AppleVerificationError("missing_apple_oid", `the intermediate lacks Apple's WWDR extension ${APPLE_INTERMEDIATE_OID}`);
	}
	if (!intermediate.isCa) throw new AppleVerificationError("not_a_ca", "the intermediate is not a CA (basicConstraints cA is not TRUE)");
}

function knownIntermediate(store: TrustStore, base64: string, now: number): VerifiedIntermediate | undefined {
	const known = intermediates.get(store)?.get(base64);
	return known && now < known.expiresAt ? known : undefined;
}

function rememberIntermediate(store: TrustStore, base64: string, verified: VerifiedIntermediate, now: number): void {
	if (verified.expiresAt <= now) return;
	let map = intermediates.get(store);
	if (!map) intermediates.set(store, (map = new Map()));
	map.delete(base64);
	if (map.size >= MAX_INTERMEDIATES_PER_STORE) map.delete(map.keys().next().value!);
	map.set(base64, verified);
}

/** Several trusted roots may share a name (a re-keyed root); the one whose key verifies the intermediate counts. */
async function findIssuingRoot(intermediate: Certificate, candidates: readonly TrustedRoot[]): Promise<TrustedRoot | undefined> {
	for (const root of candidates) {
		if (await isSignedBy(intermediate, root.certificate, await root.publicKey())) return root;
	}
	return undefined;
}

const HASHES: Readonly<Record<string, string>> = {
	[Oid.ECDSA_WITH_SHA256]: "SHA-256",
	[Oid.ECDSA_WITH_SHA384]: "SHA-384",
};

async function isSignedBy(cert: Certificate, issuer: Certificate, issuerKey: CryptoKey): Promise<boolean> {
	const hash = HASHES[cert.signatureAlgorithm];
	if (!hash) throw new AppleVerificationError("unsupported_algorithm", `certificate signed with ${cert.signatureAlgorithm}, not ECDSA with SHA-256 or SHA-384`);
	const size = CURVES[issuer.curve ?? ""]?.size;
	const signature = size === undefined ? undefined : ecdsaSignatureToRaw(cert.signature, size);
	if (!signature) return false;
	return crypto.subtle.verify({ name: "ECDSA", hash }, issuerKey, signature, cert.tbs);
}

/**
 * Certificates carry ECDSA signatures as DER SEQUENCE { r INTEGER, s INTEGER }; WebCrypto wants r‖s, each
 * left-padded to the curve's size. Undefined when it is not such a signature (which then simply fails to verify).
 */
export function ecdsaSignatureToRaw(der: Uint8Array, size: number): Bytes | undefined {
	try {
		const fields = DerCursor.within(der, readSingle(der, 0, der.length, Tag.SEQUENCE));
		const r = fields.next(Tag.INTEGER);
		const s = fields.next(Tag.INTEGER);
		fields.finish();
		const out = new Uint8Array(size * 2);
		return copyUnsigned(der, r.contentStart, r.contentEnd, out, 0, size) && copyUnsigned(der, s.contentStart, s.contentEnd, out, size, size) ? out : undefined;
	} catch (error) {
		if (error instanceof DerError) return undefined;
		throw error;
	}
}

function copyUnsigned(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number, size: number): boolean {
	if (end === start || (from[start]! & 0x80) !== 0) return false;
	while (start < end - 1 && from[start] === 0) start++;
	if (end - start > size) return false;
	to.set(from.subarray(start, end), at + size - (end - start));
	return true;
}

function assertValidAt(validity: readonly Validity[], effectiveDate: number): void {
	for (const { which, notBefore, notAfter } of validity) {
		if (notBefore > effectiveDate + MAX_CLOCK_SKEW_MS || notAfter < effectiveDate - MAX_CLOCK_SKEW_MS) {
			throw new AppleVerificationError(
				"certificate_not_valid_at_date",
				`the ${which} certificate is valid ${new Date(notBefore).toISOString()} to ${new Date(notAfter).toISOString()}, not at ${describeDate(effectiveDate)}`,
			);
		}
	}
}

function describeDate(ms: number): string {
	return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

function remember(leaf: string, entry: CachedChain, now: number): void {
	if (entry.expiresAt <= now) return;
	cache.delete(leaf);
	// Oldest first: Map iteration follows insertion order, and a refreshed entry was just re-inserted.
	if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!);
	cache.set(leaf, entry);
}
