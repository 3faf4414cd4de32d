import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { clearChainCache, ecdsaSignatureToRaw, verifyCertificateChain, type TrustStore } from "../src/apple/chain";
import { APPLE_ROOT_CA_G3, APPLE_WWDR_CA_G6, createTrustStore, defaultTrustStore, InvalidTrustedRootError, PREVERIFIED_INTERMEDIATES } from "../src/apple/roots";
import { CURVES, importPublicKey, parseCertificateBase64 } from "../src/apple/x509";
import { APPLE_RECEIPT_SIGNING_LEAF_2025, APPLE_ROOT_CA_G3 as FIXTURE_ROOT, APPLE_WWDR_CA_G6 as FIXTURE_WWDR_G6, REAL_APPLE_X5C } from "./fixtures/apple/real-chain.ts";
import { APPLE_INTERMEDIATE_OID, APPLE_LEAF_OID, createApplePki, issueCertificate, type ApplePki, type ApplePkiOptions } from "./support/pki.ts";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 0, 1);
const within = { notBefore: NOW - 30 * DAY, notAfter: NOW + 365 * DAY };
/** Apple's libraries allow a minute of clock skew at either end of a validity window. */
const SKEW = 60_000;

async function refusal(promise: Promise<unknown>): Promise<unknown> {
	try {
		await promise;
	} catch (error) {
		return error;
	}
	throw new Error("expected a refusal, but the chain was accepted");
}

function spyOnVerify() {
	return vi.spyOn(crypto.subtle, "verify");
}

beforeEach(() => clearChainCache());
afterEach(() => vi.restoreAllMocks());

describe("Apple's real certificate chain", () => {
	const leafNotBefore = Date.UTC(2025, 8, 19, 19, 44, 51);
	const leafNotAfter = Date.UTC(2027, 9, 13, 17, 47, 23);

	it("passes with the default trust store on 2026-01-01 and yields the leaf's P-256 key", async () => {
		const key = await verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), NOW, NOW);
		expect(key.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
		expect(key.usages).toEqual(["verify"]);
	});

	for (const [when, date] of [
		["on 2025-09-18, before the leaf was issued", Date.UTC(2025, 8, 18)],
		["a minute and a second before the leaf's notBefore", leafNotBefore - SKEW - 1000],
		["a minute and a second after the leaf's notAfter", leafNotAfter + SKEW + 1000],
		["on 2027-10-14, after the leaf expired", Date.UTC(2027, 9, 14)],
	] as const) {
		it(`is refused ${when}`, async () => {
			expect(await refusal(verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), date, NOW))).toMatchObject({
				code: "certificate_not_valid_at_date",
				message: expect.stringContaining("leaf"),
			});
		});
	}

	it("passes within the minute of clock skew Apple allows at either end", async () => {
		await expect(verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), leafNotBefore - SKEW, NOW)).resolves.toBeDefined();
		clearChainCache();
		await expect(verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), leafNotAfter + SKEW, NOW)).resolves.toBeDefined();
	});

	it("is refused where only a test root is trusted", async () => {
		const pki = await createApplePki();
		expect(await refusal(verifyCertificateChain(REAL_APPLE_X5C, createTrustStore([pki.root.base64]), NOW, NOW))).toMatchObject({ code: "untrusted_chain" });
	});

	it("has as its embedded root Apple Root CA - G3, by fingerprint", async () => {
		const der = Uint8Array.from(atob(APPLE_ROOT_CA_G3), (c) => c.charCodeAt(0));
		const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
		const fingerprint = [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
		expect(fingerprint).toBe("63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79");
		expect(APPLE_ROOT_CA_G3).toBe(FIXTURE_ROOT);
	});
});

describe("a chain from a trusted test PKI", () => {
	let pki: ApplePki;
	let store: TrustStore;
	beforeAll(async () => {
		pki = await createApplePki({ root: within, intermediate: within, leaf: within });
		store = createTrustStore([pki.root.base64]);
	});

	it("passes and yields the key that verifies the leaf owner's signatures", async () => {
		const key = await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const data = new TextEncoder().encode("signed by the leaf");
		const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pki.leaf.keyPair.privateKey, data);
		expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, data)).toBe(true);
	});

	it("passes with P-256 CAs signing with SHA-256, the shape of Apple's own test vectors", async () => {
		const small = await createApplePki({ root: { curve: "P-256", hash: "SHA-256" }, intermediate: { curve: "P-256", hash: "SHA-256" }, leaf: { hash: "SHA-256" } });
		await expect(verifyCertificateChain(small.x5c, createTrustStore([small.root.base64]), Date.now())).resolves.toBeDefined();
	});

	it("passes whatever x5c[2] holds, because the configured root is the one trusted", async () => {
		await expect(verifyCertificateChain([pki.x5c[0], pki.x5c[1], "not even a certificate"], store, NOW, NOW)).resolves.toBeDefined();
	});

	it("passes when an impostor root with the same name is trusted first", async () => {
		const impostor = await createApplePki();
		await expect(verifyCertificateChain(pki.x5c, createTrustStore([impostor.root.base64, pki.root.base64]), NOW, NOW)).resolves.toBeDefined();
	});

	for (const [name, x5c] of [
		["none", () => []],
		["two", () => pki.x5c.slice(0, 2)],
		["four", () => [...pki.x5c, pki.x5c[2]]],
	] as const) {
		it(`is refused with ${name} certificates in x5c`, async () => {
			expect(await refusal(verifyCertificateChain(x5c(), store, NOW, NOW))).toMatchObject({ code: "invalid_chain_length" });
		});
	}

	it("is refused when an entry is not a base64 certificate", async () => {
		for (const x5c of [[42, pki.x5c[1], pki.x5c[2]], ["%%%", pki.x5c[1], pki.x5c[2]], [pki.x5c[0], btoa("garbage"), pki.x5c[2]]]) {
			expect(await refusal(verifyCertificateChain(x5c, store, NOW, NOW))).toMatchObject({ code: "malformed" });
		}
	});
});

/** Builds a PKI with one thing wrong and checks against a store that trusts its root. */
async function refusedChain(options: ApplePkiOptions, effectiveDate = NOW) {
	const pki = await createApplePki({ root: { ...within, ...options.root }, intermediate: { ...within, ...options.intermediate }, leaf: { ...within, ...options.leaf } });
	return refusal(verifyCertificateChain(pki.x5c, createTrustStore([pki.root.base64]), effectiveDate, NOW));
}

describe("a chain that is not Apple's shape", () => {
	it("is refused when self-signed: the leaf names and signs itself", async () => {
		expect(await refusedChain({ leaf: { selfSigned: true } })).toMatchObject({ code: "untrusted_chain" });
	});

	it("is refused when one self-signed certificate, named like the trusted root and carrying both Apple OIDs, fills x5c", async () => {
		const trusted = await createApplePki();
		const forged = await issueCertificate({ commonName: "Test Apple Root CA - G3", ca: true, appleOid: APPLE_LEAF_OID, extraOids: [APPLE_INTERMEDIATE_OID] });
		const x5c = [forged.base64, forged.base64, forged.base64];
		expect(await refusal(verifyCertificateChain(x5c, createTrustStore([trusted.root.base64]), Date.now()))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("intermediate's signature"),
		});
	});

	it("is refused when it leads to a root nobody configured", async () => {
		const stranger = await createApplePki({ root: { commonName: "Some Other Root CA" } });
		const trusted = await createApplePki();
		expect(await refusal(verifyCertificateChain(stranger.x5c, createTrustStore([trusted.root.base64]), Date.now()))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("no trusted root"),
		});
	});

	it("is refused when its root copies the trusted root's name but not its key", async () => {
		const impostor = await createApplePki();
		const trusted = await createApplePki();
		expect(await refusal(verifyCertificateChain(impostor.x5c, createTrustStore([trusted.root.base64]), Date.now()))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("intermediate's signature"),
		});
	});

	it("is refused when the leaf names an issuer other than the intermediate that signed it", async () => {
		expect(await refusedChain({ leaf: { issuerCommonName: "Another Developer Relations CA" } })).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("leaf's issuer"),
		});
	});

	it("is refused when the intermediate names an issuer other than the root that signed it", async () => {
		expect(await refusedChain({ intermediate: { issuerCommonName: "Another Root CA" } })).toMatchObject({ code: "untrusted_chain" });
	});

	it("is refused when the leaf was issued by another intermediate of the same name", async () => {
		const pki = await createApplePki();
		const other = await createApplePki();
		const x5c = [other.leaf.base64, pki.intermediate.base64, pki.root.base64];
		expect(await refusal(verifyCertificateChain(x5c, createTrustStore([pki.root.base64]), Date.now()))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("leaf's signature"),
		});
	});

	for (const [name, options] of [
		["the leaf lacks Apple's leaf OID", { leaf: { appleOid: null } }],
		["the leaf carries …6.11.2 instead of …6.11.1", { leaf: { appleOid: "1.2.840.113635.100.6.11.2" } }],
		["the intermediate lacks Apple's intermediate OID", { intermediate: { appleOid: null } }],
		["the intermediate carries …6.2.2 instead of …6.2.1", { intermediate: { appleOid: "1.2.840.113635.100.6.2.2" } }],
	] as const) {
		it(`is refused when ${name}`, async () => {
			expect(await refusedChain(options)).toMatchObject({ code: "missing_apple_oid" });
		});
	}

	it("is refused when the intermediate is not a CA", async () => {
		expect(await refusedChain({ intermediate: { ca: false } })).toMatchObject({ code: "not_a_ca" });
	});

	it("is refused when the leaf key is P-384, which cannot make ES256 signatures", async () => {
		expect(await refusedChain({ leaf: { curve: "P-384" } })).toMatchObject({ code: "unsupported_algorithm" });
	});

	it("is refused when a certificate is signed with SHA-512", async () => {
		expect(await refusedChain({ leaf: { hash: "SHA-512" } })).toMatchObject({ code: "unsupported_algorithm" });
	});

	for (const [name, options] of [
		["the leaf had expired", { leaf: { notAfter: NOW - DAY } }],
		["the leaf was not yet valid", { leaf: { notBefore: NOW + DAY } }],
		["the intermediate had expired", { intermediate: { notAfter: NOW - DAY } }],
		["the root was not yet valid", { root: { notBefore: NOW + DAY } }],
	] as const) {
		it(`is refused when, at the effective date, ${name}`, async () => {
			expect(await refusedChain(options)).toMatchObject({ code: "certificate_not_valid_at_date" });
		});
	}
});

describe("the verified-chain cache", () => {
	let pki: ApplePki;
	let store: TrustStore;
	beforeAll(async () => {
		pki = await createApplePki({ root: within, intermediate: within, leaf: within });
		store = createTrustStore([pki.root.base64]);
	});

	it("serves a second check without any signature verification", async () => {
		const first = await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const verify = spyOnVerify();
		expect(await verifyCertificateChain(pki.x5c, store, NOW + DAY, NOW)).toBe(first);
		expect(verify).not.toHaveBeenCalled();
	});

	it("still refuses a chain it holds for an effective date outside the certificates' validity", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const verify = spyOnVerify();
		for (const date of [within.notBefore - SKEW - 1, within.notAfter + SKEW + 1]) {
			expect(await refusal(verifyCertificateChain(pki.x5c, store, date, NOW))).toMatchObject({ code: "certificate_not_valid_at_date" });
		}
		expect(verify).not.toHaveBeenCalled();
	});

	it("does not carry a chain trusted by one store over to another", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		expect(await refusal(verifyCertificateChain(pki.x5c, defaultTrustStore(), NOW, NOW))).toMatchObject({ code: "untrusted_chain" });
	});

	it("does not accept a held leaf beside a different intermediate", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const other = await createApplePki();
		expect(await refusal(verifyCertificateChain([pki.x5c[0], other.intermediate.base64, pki.x5c[2]], store, NOW, NOW))).toMatchObject({ code: "untrusted_chain" });
	});

	it("checks a chain afresh after an hour", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const verify = spyOnVerify();
		await verifyCertificateChain(pki.x5c, store, NOW, NOW + 60 * 60 * 1000 - 1);
		expect(verify).not.toHaveBeenCalled();
		await verifyCertificateChain(pki.x5c, store, NOW, NOW + 60 * 60 * 1000);
		expect(verify).toHaveBeenCalledTimes(2);
	});

	it("checks a chain afresh once its earliest certificate has expired", async () => {
		const shortLived = await createApplePki({ root: within, intermediate: within, leaf: { notBefore: NOW - DAY, notAfter: NOW + 10 * 60 * 1000 } });
		const shortStore = createTrustStore([shortLived.root.base64]);
		await verifyCertificateChain(shortLived.x5c, shortStore, NOW, NOW);
		const verify = spyOnVerify();
		await verifyCertificateChain(shortLived.x5c, shortStore, NOW, NOW + 10 * 60 * 1000 - 1);
		expect(verify).not.toHaveBeenCalled();
		await verifyCertificateChain(shortLived.x5c, shortStore, NOW, NOW + 10 * 60 * 1000);
		// The leaf's signature; the intermediate, still valid, stays verified for this store.
		expect(verify).toHaveBeenCalledTimes(1);
	});

	it("holds at most 64 chains, forgetting the oldest first", async () => {
		const leaves = await Promise.all(Array.from({ length: 64 }, () => issueCertificate({ ...within, hash: "SHA-384", appleOid: APPLE_LEAF_OID }, pki.intermediate)));
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		for (const leaf of leaves) await verifyCertificateChain([leaf.base64, pki.x5c[1], pki.x5c[2]], store, NOW, NOW);
		const verify = spyOnVerify();
		await verifyCertificateChain([leaves[63]!.base64, pki.x5c[1], pki.x5c[2]], store, NOW, NOW);
		expect(verify).not.toHaveBeenCalled();
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		expect(verify).toHaveBeenCalledTimes(1);
	});
});

describe("the verified-intermediate memo", () => {
	let pki: ApplePki;
	let store: TrustStore;
	beforeAll(async () => {
		pki = await createApplePki({ root: within, intermediate: within, leaf: within });
		store = createTrustStore([pki.root.base64]);
	});
	const newLeaf = (spec: { notBefore?: number; notAfter?: number } = within) => issueCertificate({ ...spec, hash: "SHA-384", appleOid: APPLE_LEAF_OID }, pki.intermediate);

	it("checks a new leaf under an intermediate this store has verified with one signature verification, the leaf's", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const leaf = await newLeaf();
		const verify = spyOnVerify();
		const key = await verifyCertificateChain([leaf.base64, pki.x5c[1], pki.x5c[2]], store, NOW, NOW);
		expect(verify).toHaveBeenCalledTimes(1);
		const data = new TextEncoder().encode("signed by the new leaf");
		const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, leaf.keyPair.privateKey, data);
		expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, data)).toBe(true);
	});

	it("still refuses a leaf the remembered intermediate did not sign", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const other = await createApplePki({ root: within, intermediate: within, leaf: within });
		expect(await refusal(verifyCertificateChain([other.leaf.base64, pki.x5c[1], pki.x5c[2]], store, NOW, NOW))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("leaf's signature"),
		});
	});

	it("still refuses a new leaf's data signed when the remembered intermediate had expired", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const longLived = await newLeaf({ notBefore: within.notBefore, notAfter: within.notAfter + 100 * DAY });
		expect(await refusal(verifyCertificateChain([longLived.base64, pki.x5c[1], pki.x5c[2]], store, within.notAfter + 10 * DAY, NOW))).toMatchObject({
			code: "certificate_not_valid_at_date",
			message: expect.stringContaining("intermediate"),
		});
	});

	it("does not carry an intermediate verified for one store over to another", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		const stranger = await createApplePki();
		expect(await refusal(verifyCertificateChain(pki.x5c, createTrustStore([stranger.root.base64]), NOW, NOW))).toMatchObject({ code: "untrusted_chain" });
		const leaf = await newLeaf();
		const verify = spyOnVerify();
		await verifyCertificateChain([leaf.base64, pki.x5c[1], pki.x5c[2]], createTrustStore([stranger.root.base64, pki.root.base64]), NOW, NOW);
		// The leaf's signature, then the intermediate's against each trusted root of its issuer's name (both test roots
		// share one) until one verifies it: nothing was taken from the other store.
		expect(verify).toHaveBeenCalledTimes(3);
	});

	it("is forgotten with the verified chains", async () => {
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		clearChainCache();
		const verify = spyOnVerify();
		await verifyCertificateChain(pki.x5c, store, NOW, NOW);
		expect(verify).toHaveBeenCalledTimes(2);
	});
});

describe("Apple's preverified intermediates", () => {
	it("are each signed by their root, as checked here with WebCrypto, and are Apple WWDR CAs", async () => {
		expect(PREVERIFIED_INTERMEDIATES.length).toBeGreaterThan(0);
		for (const { root, intermediate } of PREVERIFIED_INTERMEDIATES) {
			const rootCertificate = parseCertificateBase64(root);
			const certificate = parseCertificateBase64(intermediate);
			expect(certificate.issuer).toEqual(rootCertificate.subject);
			expect(certificate.extensions.has(APPLE_INTERMEDIATE_OID) && certificate.isCa).toBe(true);
			const signature = ecdsaSignatureToRaw(certificate.signature, CURVES[rootCertificate.curve!]!.size)!;
			const hash = { "1.2.840.10045.4.3.2": "SHA-256", "1.2.840.10045.4.3.3": "SHA-384" }[certificate.signatureAlgorithm];
			expect(await crypto.subtle.verify({ name: "ECDSA", hash: hash! }, await importPublicKey(rootCertificate), signature, certificate.tbs)).toBe(true);
		}
		expect(APPLE_WWDR_CA_G6).toBe(FIXTURE_WWDR_G6);
	});

	it("spare the default store one signature check on Apple's real chain, and no other", async () => {
		const verify = spyOnVerify();
		await verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), NOW, NOW);
		expect(verify).toHaveBeenCalledTimes(1);
	});

	it("do not vouch for a leaf the intermediate did not sign, though it names the intermediate as its issuer", async () => {
		const g6 = parseCertificateBase64(APPLE_WWDR_CA_G6);
		const impostorKeys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"])) as CryptoKeyPair;
		const impostor = { subject: g6.subject, keyPair: impostorKeys, keyIdentifier: new Uint8Array(20) } as unknown as Parameters<typeof issueCertificate>[1];
		const forged = await issueCertificate({ ...within, hash: "SHA-384", appleOid: APPLE_LEAF_OID }, impostor);
		expect(await refusal(verifyCertificateChain([forged.base64, APPLE_WWDR_CA_G6, APPLE_ROOT_CA_G3], defaultTrustStore(), NOW, NOW))).toMatchObject({
			code: "untrusted_chain",
			message: expect.stringContaining("leaf's signature"),
		});
	});

	it("do not stretch a certificate's validity: data signed after the intermediate expired is refused", async () => {
		expect(await refusal(verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), Date.UTC(2036, 5, 1), NOW))).toMatchObject({ code: "certificate_not_valid_at_date" });
	});
});

describe("a trust store", () => {
	it("is refused for a configured root that is not a certificate", () => {
		expect(() => createTrustStore(["bm90IGEgY2VydGlmaWNhdGU="])).toThrow(InvalidTrustedRootError);
		expect(() => createTrustStore([APPLE_ROOT_CA_G3, "%%%"])).toThrow(/\[1\]/);
		expect(() => createTrustStore([])).toThrow(InvalidTrustedRootError);
	});

	it("accepts a root pasted as PEM", async () => {
		const pem = `-----BEGIN CERTIFICATE-----\n${APPLE_ROOT_CA_G3.match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`;
		await expect(verifyCertificateChain(REAL_APPLE_X5C, createTrustStore([pem]), NOW, NOW)).resolves.toBeDefined();
	});

	it("is built once per isolate for the same roots, so their keys are imported once", () => {
		const pem = `-----BEGIN CERTIFICATE-----\n${APPLE_ROOT_CA_G3.match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`;
		expect(createTrustStore([APPLE_ROOT_CA_G3])).toBe(defaultTrustStore());
		expect(createTrustStore([pem])).toBe(defaultTrustStore());
		expect(createTrustStore([APPLE_ROOT_CA_G3, FIXTURE_WWDR_G6])).not.toBe(defaultTrustStore());
	});

	it("never trusts a leaf configured as a root", async () => {
		expect(await refusal(verifyCertificateChain(REAL_APPLE_X5C, createTrustStore([APPLE_RECEIPT_SIGNING_LEAF_2025]), NOW, NOW))).toMatchObject({ code: "untrusted_chain" });
	});
});
