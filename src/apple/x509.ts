/**
 * X.509 certificates, read only as far as Apple's chain check needs: what is signed, by which algorithm, the
 * names that link the chain, the validity window, the key, the CA flag and which extensions are present.
 */
import { certificateBase64ToBytes, contextTag, DerCursor, DerError, encodingOf, readBitStringBytes, readBoolean, readInner, readOid, readSingle, readTime, readUnsigned, Tag, type Bytes, type Tlv } from "./der";
import { AppleVerificationError } from "./errors";

export const Oid = {
	EC_PUBLIC_KEY: "1.2.840.10045.2.1",
	P256: "1.2.840.10045.3.1.7",
	P384: "1.3.132.0.34",
	ECDSA_WITH_SHA256: "1.2.840.10045.4.3.2",
	ECDSA_WITH_SHA384: "1.2.840.10045.4.3.3",
	BASIC_CONSTRAINTS: "2.5.29.19",
} as const;

export interface Certificate {
	/** DER tbsCertificate, exactly as signed. */
	readonly tbs: Bytes;
	readonly signatureAlgorithm: string;
	/** DER Ecdsa-Sig-Value (SEQUENCE { r, s }) for the ECDSA certificates we accept. */
	readonly signature: Bytes;
	/** Raw DER Names: compared bytewise, which is stricter than RFC 5280's matching and all Apple's chains need. */
	readonly issuer: Bytes;
	readonly subject: Bytes;
	/** Milliseconds since the epoch. */
	readonly notBefore: number;
	readonly notAfter: number;
	/** DER SubjectPublicKeyInfo, ready for `crypto.subtle.importKey("spki", …)`. */
	readonly spki: Bytes;
	readonly publicKeyAlgorithm: string;
	/** The named curve of an EC key; undefined for any other key type. */
	readonly curve: string | undefined;
	/** basicConstraints cA; false when the extension is absent. */
	readonly isCa: boolean;
	readonly extensions: ReadonlySet<string>;
}

/** Parses a DER certificate; anything that is not one is an AppleVerificationError "malformed". */
export function parseCertificate(der: Bytes): Certificate {
	try {
		return parse(der);
	} catch (error) {
		if (error instanceof DerError) throw new AppleVerificationError("malformed", `certificate does not parse: ${error.message}`);
		throw error;
	}
}

/** An x5c entry or configured root: standard base64 of the DER. */
export function parseCertificateBase64(base64: string): Certificate {
	let der: Bytes;
	try {
		der = certificateBase64ToBytes(base64);
	} catch {
		throw new AppleVerificationError("malformed", "certificate is not base64");
	}
	return parseCertificate(der);
}

/** WebCrypto's name for the curves we verify with, by OID. */
export const CURVES: Readonly<Record<string, { name: "P-256" | "P-384"; size: number }>> = {
	[Oid.P256]: { name: "P-256", size: 32 },
	[Oid.P384]: { name: "P-384", size: 48 },
};

export async function importPublicKey(cert: Certificate): Promise<CryptoKey> {
	const curve = cert.publicKeyAlgorithm === Oid.EC_PUBLIC_KEY && cert.curve !== undefined ? CURVES[cert.curve] : undefined;
	if (!curve) throw new AppleVerificationError("unsupported_algorithm", "certificate key is not an EC P-256 or P-384 key");
	try {
		return await crypto.subtle.importKey("spki", cert.spki, { name: "ECDSA", namedCurve: curve.name }, false, ["verify"]);
	} catch {
		throw new AppleVerificationError("malformed", "certificate public key does not import");
	}
}

function parse(der: Bytes): Certificate {
	const cert = DerCursor.within(der, readSingle(der, 0, der.length, Tag.SEQUENCE));
	const tbsTlv = cert.next(Tag.SEQUENCE);
	const signatureAlgorithmTlv = cert.next(Tag.SEQUENCE);
	const signature = readBitStringBytes(der, cert.next(Tag.BIT_STRING));
	cert.finish();

	const tbs = DerCursor.within(der, tbsTlv);
	const version = tbs.optional(contextTag(0));
	if (version && readUnsigned(der, readInner(der, version)) > 2) throw new DerError("unknown certificate version", version.start);
	tbs.next(Tag.INTEGER); // serialNumber
	// RFC 5280 4.1.1.2: the algorithm inside what is signed must be the one outside, or an attacker could relabel it.
	if (!bytesEqual(encodingOf(der, tbs.next(Tag.SEQUENCE)), encodingOf(der, signatureAlgorithmTlv))) {
		throw new DerError("inner and outer signature algorithms differ", signatureAlgorithmTlv.start);
	}
	const issuer = encodingOf(der, tbs.next(Tag.SEQUENCE));
	const validity = DerCursor.within(der, tbs.next(Tag.SEQUENCE));
	const notBefore = readTime(der, validity.next());
	const notAfter = readTime(der, validity.next());
	validity.finish();
	const subject = encodingOf(der, tbs.next(Tag.SEQUENCE));
	const spkiTlv = tbs.next(Tag.SEQUENCE);
	tbs.optional(contextTag(1, false)); // issuerUniqueID
	tbs.optional(contextTag(2, false)); // subjectUniqueID
	const extensionsTlv = tbs.optional(contextTag(3));
	tbs.finish();

	const key = DerCursor.within(der, spkiTlv);
	const keyAlgorithm = DerCursor.within(der, key.next(Tag.SEQUENCE));
	const publicKeyAlgorithm = readOid(der, keyAlgorithm.next());
	const curveTlv = keyAlgorithm.optional(Tag.OID);
	readBitStringBytes(der, key.next(Tag.BIT_STRING));
	key.finish();

	const { extensions, isCa } = extensionsTlv ? readExtensions(der, readInner(der, extensionsTlv, Tag.SEQUENCE)) : { extensions: new Set<string>(), isCa: false };
	return {
		tbs: encodingOf(der, tbsTlv),
		signatureAlgorithm: readOid(der, DerCursor.within(der, signatureAlgorithmTlv).next()),
		signature,
		issuer,
		subject,
		notBefore,
		notAfter,
		spki: encodingOf(der, spkiTlv),
		publicKeyAlgorithm,
		curve: curveTlv ? readOid(der, curveTlv) : undefined,
		isCa,
		extensions,
	};
}

function readExtensions(der: Bytes, sequence: Tlv): { extensions: Set<string>; isCa: boolean } {
	const extensions = new Set<string>();
	let isCa = false;
	const list = DerCursor.within(der, sequence);
	while (!list.done) {
		const extension = DerCursor.within(der, list.next(Tag.SEQUENCE));
		const oid = readOid(der, extension.next());
		extension.optional(Tag.BOOLEAN); // critical
		const value = extension.next(Tag.OCTET_STRING);
		extension.finish();
		// RFC 5280 4.2: an extension appears at most once; two basicConstraints could be read two ways.
		if (extensions.has(oid)) throw new DerError(`extension ${oid} appears twice`, value.start);
		extensions.add(oid);
		if (oid === Oid.BASIC_CONSTRAINTS) isCa = readBasicConstraintsCa(der, value);
	}
	return { extensions, isCa };
}

function readBasicConstraintsCa(der: Bytes, octets: Tlv): boolean {
	const fields = DerCursor.within(der, readInner(der, octets, Tag.SEQUENCE));
	const ca = fields.optional(Tag.BOOLEAN);
	fields.optional(Tag.INTEGER); // pathLenConstraint
	fields.finish();
	return ca ? readBoolean(der, ca) : false;
}

export function bytesEqual(a: Bytes, b: Bytes): boolean {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
	return true;
}
