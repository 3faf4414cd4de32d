/**
 * The benchmark's App Store PKI: shaped like Apple's (root → WWDR-like intermediate → receipt-signing leaf, Apple's
 * OIDs, P-384 CAs signing with SHA-384, a P-256 leaf), plus what Apple's real certificates also carry and
 * test/support/pki.ts leaves out: an Authority Information Access extension naming an OCSP responder. That
 * responder runs here, on 127.0.0.1, and answers "good" for the leaf and the intermediate with responses signed by
 * delegated OCSP-signing certificates, as Apple's responders do (RFC 6960).
 *
 * Why: Apple's SignedDataVerifier caches verified chains only with online checks on, and then asks the OCSP
 * responder named in each certificate before caching (checkOCSPStatus in its jws_verification.ts). With this PKI
 * and responder, Apple's library runs with its cache engaged and nothing leaves the machine. Our verifier ignores
 * the extension, so every verifier in a benchmark checks the very same signed transactions.
 */
import { createServer, type Server } from "node:http";
import { bitString, boolean, explicit, integer, nullValue, octetString, oid, printableString, sequence, set, time, tlv, utf8String, type Bytes } from "../test/support/der-writer.ts";
import { bytesToBase64, toPem } from "../test/support/keys.ts";
import { APPLE_INTERMEDIATE_OID, APPLE_LEAF_OID } from "../test/support/pki.ts";

const DAY = 24 * 60 * 60 * 1000;
const OID = {
	basicConstraints: "2.5.29.19",
	keyUsage: "2.5.29.15",
	extKeyUsage: "2.5.29.37",
	subjectKeyIdentifier: "2.5.29.14",
	authorityKeyIdentifier: "2.5.29.35",
	authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
	ocspAccess: "1.3.6.1.5.5.7.48.1",
	ocspBasic: "1.3.6.1.5.5.7.48.1.1",
	ocspSigning: "1.3.6.1.5.5.7.3.9",
	sha256: "2.16.840.1.101.3.4.2.1",
	ecdsaWithSha256: "1.2.840.10045.4.3.2",
	ecdsaWithSha384: "1.2.840.10045.4.3.3",
} as const;

export interface BenchCertificate {
	der: Bytes;
	base64: string;
	pem: string;
	keyPair: CryptoKeyPair;
	privateKeyPkcs8Pem: string;
	subject: Bytes;
	serial: Bytes;
	/** The raw public key (the SubjectPublicKeyInfo BIT STRING's bytes). */
	publicPoint: Bytes;
}

export interface OcspPki {
	root: BenchCertificate;
	intermediate: BenchCertificate;
	leaf: BenchCertificate;
	x5c: [leaf: string, intermediate: string, root: string];
	/** The responder's base URL, e.g. http://127.0.0.1:41234 */
	ocspUrl: string;
	/** OCSP requests answered so far, by certificate ("leaf", "intermediate"). */
	requests: Record<string, number>;
	close(): Promise<void>;
}

interface Spec {
	commonName: string;
	curve: "P-256" | "P-384";
	hash: "SHA-256" | "SHA-384";
	ca: boolean;
	appleOid?: string;
	ocspUrl?: string;
	ocspSigning?: boolean;
}

/** Starts the responder, then issues the chain whose AIA points at it. Call close() when done. */
export async function startOcspPki(): Promise<OcspPki> {
	const responses = new Map<string, Bytes>();
	const requests: Record<string, number> = {};
	const server = createServer((request, response) => {
		const name = /^\/ocsp\/(\w+)$/.exec(request.url ?? "")?.[1];
		const body = name ? responses.get(name) : undefined;
		request.resume();
		request.on("end", () => {
			if (request.method !== "POST" || request.headers["content-type"] !== "application/ocsp-request" || !body || !name) {
				response.writeHead(400).end();
				return;
			}
			requests[name] = (requests[name] ?? 0) + 1;
			response.writeHead(200, { "content-type": "application/ocsp-response", "content-length": body.length }).end(body);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	if (!address || typeof address === "string") throw new Error("the OCSP responder has no port");
	const ocspUrl = `http://127.0.0.1:${address.port}`;

	const root = await issue({ commonName: "Bench Apple Root CA - G3", curve: "P-384", hash: "SHA-384", ca: true });
	const intermediate = await issue(
		{ commonName: "Bench Apple Worldwide Developer Relations CA - G6", curve: "P-384", hash: "SHA-384", ca: true, appleOid: APPLE_INTERMEDIATE_OID, ocspUrl: `${ocspUrl}/ocsp/intermediate` },
		root,
	);
	const leaf = await issue(
		{ commonName: "Bench Prod ECC Mac App Store and iTunes Store Receipt Signing", curve: "P-256", hash: "SHA-384", ca: false, appleOid: APPLE_LEAF_OID, ocspUrl: `${ocspUrl}/ocsp/leaf` },
		intermediate,
	);
	// Each CA delegates its OCSP answers to a responder certificate it issues (extendedKeyUsage OCSPSigning).
	const rootResponder = await issue({ commonName: "Bench Apple Root CA - G3 OCSP Responder", curve: "P-256", hash: "SHA-384", ca: false, ocspSigning: true }, root);
	const intermediateResponder = await issue({ commonName: "Bench WWDR G6 OCSP Responder", curve: "P-256", hash: "SHA-384", ca: false, ocspSigning: true }, intermediate);
	responses.set("intermediate", await ocspResponse(intermediate, root, rootResponder));
	responses.set("leaf", await ocspResponse(leaf, intermediate, intermediateResponder));

	return {
		root,
		intermediate,
		leaf,
		x5c: [leaf.base64, intermediate.base64, root.base64],
		ocspUrl,
		requests,
		close: () => new Promise((resolve) => server.close(() => resolve())),
	};
}

async function issue(spec: Spec, issuer?: BenchCertificate): Promise<BenchCertificate> {
	const now = Date.now();
	const keyPair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: spec.curve }, true, ["sign", "verify"])) as CryptoKeyPair;
	const spki = new Uint8Array((await crypto.subtle.exportKey("spki", keyPair.publicKey)) as ArrayBuffer);
	const publicPoint = new Uint8Array((await crypto.subtle.exportKey("raw", keyPair.publicKey)) as ArrayBuffer);
	const keyIdentifier = await sha("SHA-1", publicPoint);
	const subject = name(spec.commonName);
	const serial = crypto.getRandomValues(new Uint8Array(8));
	serial[0] = (serial[0]! & 0x7f) | 0x01;

	const extensions = [
		sequence(oid(OID.basicConstraints), boolean(true), octetString(spec.ca ? sequence(boolean(true)) : sequence())),
		sequence(oid(OID.keyUsage), boolean(true), octetString(tlv(0x03, spec.ca ? Uint8Array.of(1, 0x06) : Uint8Array.of(7, 0x80)))),
		sequence(oid(OID.subjectKeyIdentifier), octetString(octetString(keyIdentifier))),
		sequence(oid(OID.authorityKeyIdentifier), octetString(sequence(tlv(0x80, issuer ? await sha("SHA-1", issuer.publicPoint) : keyIdentifier)))),
		...(spec.ocspUrl ? [sequence(oid(OID.authorityInfoAccess), octetString(sequence(sequence(oid(OID.ocspAccess), tlv(0x86, new TextEncoder().encode(spec.ocspUrl))))))] : []),
		...(spec.ocspSigning ? [sequence(oid(OID.extKeyUsage), octetString(sequence(oid(OID.ocspSigning))))] : []),
		...(spec.appleOid ? [sequence(oid(spec.appleOid), octetString(nullValue()))] : []),
	];
	const algorithm = sequence(oid(spec.hash === "SHA-256" ? OID.ecdsaWithSha256 : OID.ecdsaWithSha384));
	const tbs = sequence(
		explicit(0, integer(2)),
		integer(serial),
		algorithm,
		issuer?.subject ?? subject,
		sequence(time(now - 30 * DAY), time(now + 365 * DAY)),
		subject,
		spki,
		explicit(3, sequence(...extensions)),
	);
	const der = sequence(tbs, algorithm, bitString(await ecdsaSign(issuer?.keyPair.privateKey ?? keyPair.privateKey, spec.hash, tbs)));
	const pkcs8 = (await crypto.subtle.exportKey("pkcs8", keyPair.privateKey)) as ArrayBuffer;
	return { der, base64: bytesToBase64(der), pem: toPem(der, "CERTIFICATE"), keyPair, privateKeyPkcs8Pem: toPem(pkcs8, "PRIVATE KEY"), subject, serial, publicPoint };
}

/**
 * A successful OCSPResponse (RFC 6960 4.2.1) saying `cert` is good, valid from a minute ago for a day, signed by
 * `responder` (issued by `issuer`, which it names by key hash and ships in `certs`). CertID uses SHA-256, as Apple's
 * verifier builds its own to compare.
 */
async function ocspResponse(cert: BenchCertificate, issuer: BenchCertificate, responder: BenchCertificate): Promise<Bytes> {
	const now = Date.now();
	const certId = sequence(sequence(oid(OID.sha256), nullValue()), octetString(await sha("SHA-256", issuer.subject)), octetString(await sha("SHA-256", issuer.publicPoint)), integer(cert.serial));
	const single = sequence(certId, Uint8Array.of(0x80, 0x00), generalizedTime(now - 60_000), explicit(0, generalizedTime(now + DAY)));
	const responderId = tlv(0xa2, octetString(await sha("SHA-1", responder.publicPoint)));
	const tbs = sequence(responderId, generalizedTime(now), sequence(single));
	const basic = sequence(tbs, sequence(oid(OID.ecdsaWithSha256)), bitString(await ecdsaSign(responder.keyPair.privateKey, "SHA-256", tbs)), explicit(0, sequence(responder.der)));
	return sequence(tlv(0x0a, Uint8Array.of(0)), explicit(0, sequence(oid(OID.ocspBasic), octetString(basic))));
}

/** An ECDSA signature as X.509 and OCSP carry it: DER SEQUENCE { r, s }. */
async function ecdsaSign(key: CryptoKey, hash: string, data: Bytes): Promise<Bytes> {
	const raw = new Uint8Array((await crypto.subtle.sign({ name: "ECDSA", hash }, key, data)) as ArrayBuffer);
	const half = raw.length / 2;
	return sequence(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

async function sha(algorithm: "SHA-1" | "SHA-256", data: Bytes): Promise<Bytes> {
	return new Uint8Array(await crypto.subtle.digest(algorithm, data));
}

function generalizedTime(ms: number): Bytes {
	const text = new Date(ms).toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
	return tlv(0x18, new TextEncoder().encode(text));
}

function name(commonName: string): Bytes {
	const attribute = (type: string, value: Uint8Array) => set(sequence(oid(type), value));
	return sequence(
		attribute("2.5.4.3", utf8String(commonName)),
		attribute("2.5.4.11", utf8String("Apple Worldwide Developer Relations (bench)")),
		attribute("2.5.4.10", utf8String("Apple Inc.")),
		attribute("2.5.4.6", printableString("US")),
	);
}

