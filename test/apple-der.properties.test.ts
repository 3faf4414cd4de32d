import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ecdsaSignatureToRaw } from "../src/apple/chain";
import {
	base64ToBytes,
	DerError,
	readBitStringBytes,
	readBoolean,
	readOid,
	readString,
	readTime,
	readTlv,
	readUnsigned,
	type Tlv,
} from "../src/apple/der";
import { AppleVerificationError } from "../src/apple/errors";
import { parseCertificate, parseCertificateBase64 } from "../src/apple/x509";
import { APPLE_RECEIPT_SIGNING_LEAF_2025, APPLE_ROOT_CA_G3, APPLE_WWDR_CA_G6 } from "./fixtures/apple/real-chain.ts";
import { bounded, onlyThrows, PARSE_BOUND_MS } from "./support/bounded.ts";
import { derElement, largeDer } from "./support/der-arbitrary.ts";
import { time, tlv, type Bytes } from "./support/der-writer.ts";
import { bytesToBase64 } from "./support/keys.ts";
import { applyByteMutations, byteMutations } from "./support/mutations.ts";
import { base64Url, createApplePki } from "./support/pki.ts";

/**
 * Properties of the DER reader and the X.509 parser over untrusted bytes: the only exception is the documented
 * one (DerError from der.ts, AppleVerificationError "malformed" from x509.ts), and no input is slow to refuse.
 * Failures print fast-check's seed and the shrunk counterexample; replay with `{ seed, path }` in fc.assert.
 */

/** Arbitrary bytes, mostly small, sometimes up to 256 KiB so a super-linear reader would show in the time bound. */
const anyBytes = fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) }, { weight: 1, arbitrary: largeDer(256 * 1024) });

function expectMalformedCertificate(error: AppleVerificationError | undefined): void {
	if (error) expect(error.code).toBe("malformed");
}

/** Valid certificates to damage: a fresh test PKI (P-384 root and intermediate, P-256 leaf) and Apple's real chain. */
let certificates: Bytes[];
beforeAll(async () => {
	const pki = await createApplePki();
	certificates = [pki.leaf.der, pki.intermediate.der, pki.root.der, ...[APPLE_RECEIPT_SIGNING_LEAF_2025, APPLE_WWDR_CA_G6, APPLE_ROOT_CA_G3].map((b) => base64ToBytes(b))];
});

describe("the DER reader, on untrusted bytes", () => {
	it("reads an element that lies inside its limit, or throws a DerError", () => {
		const input = anyBytes.chain((bytes) => fc.tuple(fc.constant(bytes), fc.nat({ max: bytes.length }), fc.nat({ max: bytes.length })));
		fc.assert(
			fc.property(input, ([bytes, a, b]) => {
				const [offset, limit] = a <= b ? [a, b] : [b, a];
				const outcome = bounded(PARSE_BOUND_MS, () => readTlv(bytes, offset, limit));
				onlyThrows(outcome, DerError);
				if (outcome.ok) {
					const read: Tlv = outcome.value;
					expect(read.start).toBe(offset);
					expect(offset < read.contentStart && read.contentStart <= read.contentEnd && read.contentEnd <= read.end && read.end <= limit).toBe(true);
				}
			}),
			{ numRuns: 300 },
		);
	});

	it("reads values of any tag and content, or throws a DerError", () => {
		const readers = [readOid, readBoolean, readUnsigned, readString, readBitStringBytes, readTime];
		const element = fc.tuple(fc.oneof(fc.constantFrom(0x01, 0x02, 0x03, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18), fc.integer({ min: 1, max: 0x1e })), fc.uint8Array({ maxLength: 40 }));
		fc.assert(
			fc.property(element, fc.constantFrom(...readers), ([tag, content], reader) => {
				const bytes = tlv(tag, content);
				onlyThrows(
					bounded(PARSE_BOUND_MS, () => reader(bytes, readTlv(bytes))),
					DerError,
				);
			}),
			{ numRuns: 300 },
		);
	});

	it("decodes base64 of any bytes back to those bytes", () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
				expect(base64ToBytes(bytesToBase64(bytes))).toEqual(bytes);
			}),
			{ numRuns: 100 },
		);
	});

	it("decodes any text as base64, or throws a DerError", () => {
		const text = fc.oneof(fc.string({ unit: "binary", maxLength: 60 }), fc.base64String({ maxLength: 60 }), fc.stringMatching(/^[\w-]{0,60}$/));
		fc.assert(
			fc.property(text, (input) => {
				onlyThrows(
					bounded(PARSE_BOUND_MS, () => base64ToBytes(input)),
					DerError,
				);
			}),
			{ numRuns: 200 },
		);
	});

	/** Whole seconds between two ISO dates, written by der-writer.ts's time() and read by readTime. */
	function expectTimesReadBack(from: string, to: string, numRuns: number): void {
		const date = fc.date({ min: new Date(from), max: new Date(to), noInvalidDate: true });
		fc.assert(
			fc.property(date, (at) => {
				const ms = Math.floor(at.getTime() / 1000) * 1000;
				const encoded = time(ms);
				expect(readTime(encoded, readTlv(encoded))).toBe(ms);
			}),
			{ numRuns },
		);
	}

	it("reads back every time der-writer encodes from year 100 on (years 0-99: see the property below)", () => {
		expectTimesReadBack("0100-01-01T00:00:00Z", "9999-12-31T23:59:59Z", 200);
	});

	// Found by fast-check: Date.UTC reads years 0-99 as 1900-1999 ("00000101000000Z" read as 1900-01-01).
	it("reads back a GeneralizedTime in the years 0-99", () => {
		expectTimesReadBack("0000-01-01T00:00:00Z", "0099-12-31T23:59:59Z", 20);
	});
});

describe("the X.509 parser, on untrusted bytes", () => {
	it("parses arbitrary bytes or refuses them as malformed", () => {
		fc.assert(
			fc.property(fc.oneof(anyBytes, derElement), (bytes) => {
				expectMalformedCertificate(
					onlyThrows(
						bounded(PARSE_BOUND_MS, () => parseCertificate(Uint8Array.from(bytes))),
						AppleVerificationError,
					),
				);
			}),
			{ numRuns: 300 },
		);
	});

	it("parses a damaged certificate or refuses it as malformed, never with another error", () => {
		fc.assert(
			fc.property(fc.nat({ max: certificates.length - 1 }), byteMutations, (which, mutations) => {
				const damaged = applyByteMutations(certificates[which]!, mutations);
				const outcome = bounded(PARSE_BOUND_MS, () => parseCertificate(damaged));
				expectMalformedCertificate(onlyThrows(outcome, AppleVerificationError));
				if (outcome.ok) {
					const cert = outcome.value;
					expect(Number.isFinite(cert.notBefore) && Number.isFinite(cert.notAfter)).toBe(true);
					expect(cert.tbs.buffer).toBe(damaged.buffer);
				}
			}),
			{ numRuns: 1000 },
		);
	});

	it("parses any text as a base64 certificate or refuses it as malformed", () => {
		const text = fc.oneof(
			fc.string({ unit: "binary", maxLength: 80 }),
			fc.base64String({ maxLength: 200 }),
			fc.tuple(fc.nat({ max: 5 }), byteMutations).map(([which, mutations]) => bytesToBase64(applyByteMutations(certificates[which]!, mutations))),
		);
		fc.assert(
			fc.property(text, (input) => {
				expectMalformedCertificate(
					onlyThrows(
						bounded(PARSE_BOUND_MS, () => parseCertificateBase64(input)),
						AppleVerificationError,
					),
				);
			}),
			{ numRuns: 200 },
		);
	});

	it("turns any signature bytes into r‖s of the curve's size, or into nothing, and never throws", () => {
		const signatures = fc.oneof(anyBytes, derElement, fc.tuple(fc.nat({ max: 5 }), byteMutations).map(([which, mutations]) => applyByteMutations(parseCertificate(certificates[which]!).signature, mutations)));
		fc.assert(
			fc.property(signatures, fc.constantFrom(32, 48), (der, size) => {
				const raw = ecdsaSignatureToRaw(der, size);
				if (raw !== undefined) expect(raw.length).toBe(2 * size);
			}),
			{ numRuns: 300 },
		);
	});
});
