import { describe, expect, it } from "vitest";
import { base64ToBytes, certificateBase64ToBytes, DerCursor, DerError, readOid, readString, readTime, readTlv, readUnsigned } from "../src/apple/der";
import { AppleVerificationError } from "../src/apple/errors";
import { Oid, parseCertificate } from "../src/apple/x509";
import { APPLE_RECEIPT_SIGNING_LEAF_2025, APPLE_WWDR_CA_G6 } from "./fixtures/apple/real-chain.ts";
import { boolean, concat, explicit, ia5String, indefinite, integer, octetString, oid, sequence, tlv, utf8String, type Bytes } from "./support/der-writer.ts";
import { createApplePki, issueCertificate } from "./support/pki.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

/** A deterministic PRNG, so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
	return () => {
		seed = (seed * 1664525 + 1013904223) >>> 0;
		return seed / 2 ** 32;
	};
}

function refusal(run: () => unknown): unknown {
	try {
		run();
	} catch (error) {
		return error;
	}
	throw new Error("expected a refusal, but the input was accepted");
}

describe("a DER element", () => {
	it("has its content located by a short-form length", () => {
		const tlvRead = readTlv(bytes(0x04, 0x03, 0x61, 0x62, 0x63));
		expect(tlvRead).toEqual({ tag: 0x04, start: 0, contentStart: 2, contentEnd: 5, end: 5 });
	});

	it("has its content located by one- and two-byte long-form lengths", () => {
		expect(readTlv(tlv(0x04, new Uint8Array(200)))).toMatchObject({ contentStart: 3, end: 203 });
		expect(readTlv(tlv(0x04, new Uint8Array(300)))).toMatchObject({ contentStart: 4, end: 304 });
	});

	it("with a BER indefinite length ends after its end-of-contents octets, nested ones included", () => {
		const inner = indefinite(0x30, octetString(bytes(1, 2, 3)));
		const encoded = concat(indefinite(0x30, inner, integer(5)), bytes(0xff));
		const outer = readTlv(encoded);
		expect(outer).toEqual({ tag: 0x30, start: 0, contentStart: 2, contentEnd: encoded.length - 3, end: encoded.length - 1 });
		const children = DerCursor.within(encoded, outer);
		expect(children.next(0x30)).toMatchObject({ end: 2 + inner.length });
		expect(readUnsigned(encoded, children.next())).toBe(5);
		expect(children.done).toBe(true);
	});
});

describe("malformed DER", () => {
	const cases: [string, Uint8Array][] = [
		["empty input", bytes()],
		["a tag without a length", bytes(0x30)],
		["a length beyond the data", bytes(0x04, 0x05, 1, 2)],
		["a long-form length cut short", bytes(0x04, 0x82, 0x01)],
		["a five-byte length", bytes(0x04, 0x85, 0, 0, 0, 0, 1, 0)],
		["the reserved length 0xff", bytes(0x04, 0xff, 0)],
		["an indefinite length on a primitive element", bytes(0x04, 0x80, 1, 0, 0)],
		["an indefinite length without end-of-contents", bytes(0x30, 0x80, 0x04, 0x01, 0x41)],
		["an end-of-contents marker where an element should be", bytes(0x00, 0x00)],
		["a high tag number", bytes(0x1f, 0x81, 0x01, 0x00)],
		["indefinite lengths nested past the bound", concat(...Array(40).fill(bytes(0x30, 0x80)), ...Array(40).fill(bytes(0, 0)))],
	];
	for (const [name, input] of cases) {
		it(`is refused with a DerError: ${name}`, () => {
			expect(refusal(() => readTlv(input))).toBeInstanceOf(DerError);
		});
	}

	it("is refused when a child runs past its parent's end", () => {
		const encoded = bytes(0x30, 0x03, 0x04, 0x05, 1, 2, 3, 4, 5);
		const parent = readTlv(encoded);
		expect(parent.end).toBe(5);
		expect(refusal(() => DerCursor.within(encoded, parent).next())).toBeInstanceOf(DerError);
	});
});

describe("DER values", () => {
	it("decodes object identifiers, multi-byte arcs included", () => {
		const encoded = oid("1.2.840.113635.100.6.11.1");
		expect(readOid(encoded, readTlv(encoded))).toBe("1.2.840.113635.100.6.11.1");
		const truncated = bytes(0x06, 0x02, 0x2a, 0x86);
		expect(refusal(() => readOid(truncated, readTlv(truncated)))).toBeInstanceOf(DerError);
	});

	it("reads UTCTime with RFC 5280's century rule and GeneralizedTime beyond 2049", () => {
		const at = (tag: number, text: string) => {
			const encoded = tlv(tag, new TextEncoder().encode(text));
			return readTime(encoded, readTlv(encoded));
		};
		expect(at(0x17, "491231235959Z")).toBe(Date.UTC(2049, 11, 31, 23, 59, 59));
		expect(at(0x17, "500101000000Z")).toBe(Date.UTC(1950, 0, 1));
		expect(at(0x18, "20510704120000Z")).toBe(Date.UTC(2051, 6, 4, 12));
		for (const [tag, text] of [
			[0x17, "250230000000Z"],
			[0x17, "2509191944Z"],
			[0x17, "250919194451+0100"],
			[0x18, "20250919194451.5Z"],
			[0x18, "20251319194451Z"],
			[0x0c, "250919194451Z"],
			[0x17, "2509191944a1Z"],
			[0x17, "+50919194451Z"],
			[0x17, "250919194451z"],
			[0x18, "2025091919445 Z"],
		] as const) {
			expect(refusal(() => at(tag, text)), text).toBeInstanceOf(DerError);
		}
	});

	it("refuses negative integers and strings that are not UTF-8", () => {
		const negative = bytes(0x02, 0x01, 0xff);
		expect(refusal(() => readUnsigned(negative, readTlv(negative)))).toBeInstanceOf(DerError);
		const invalid = bytes(0x0c, 0x02, 0xc3, 0x28);
		expect(refusal(() => readString(invalid, readTlv(invalid)))).toBeInstanceOf(DerError);
		const ia5 = ia5String("2023-10-19T01:45:36Z");
		expect(readString(ia5, readTlv(ia5))).toBe("2023-10-19T01:45:36Z");
	});

	it("takes base64 only in its own alphabet", () => {
		expect(base64ToBytes("AAEC/w==")).toEqual(bytes(0, 1, 2, 255));
		for (const text of ["AAEC_w==", "AAEC-w==", "AA EC", "A", "AAE=C", "AA=", "AAEC/w==\n", "AAEC/w===", "=AAA", "AAéC"]) {
			expect(refusal(() => base64ToBytes(text)), text).toBeInstanceOf(DerError);
		}
	});

	it("takes a certificate's base64 only as RFC 7515 writes x5c: the standard alphabet, padded, nothing else", () => {
		expect(certificateBase64ToBytes("AAEC/w==")).toEqual(bytes(0, 1, 2, 255));
		expect(certificateBase64ToBytes("AAECAw==")).toEqual(bytes(0, 1, 2, 3));
		const refused = ["AAEC_w==", "AAEC-w==", "AA EC/w==", "AAEC\t/w==", "AAEC/w==\n", "\r\nAAEC/w==", "AAEC\f/w==", "AAEC\v/w==", "AAEC\u00a0/w==", "AAEC/w", "AAEC/w=", "AAEC/x==", "A", "AAEC/w===", "=AAA", "AAéC"];
		for (const text of refused) expect(refusal(() => certificateBase64ToBytes(text)), JSON.stringify(text)).toBeInstanceOf(DerError);
	});
});

/** A syntactically complete certificate (nothing signs it), for shapes the PKI builder will not make. */
function certificateWith(options: { extensions?: Uint8Array[]; trailing?: Uint8Array; outerAlgorithm?: string }): Bytes {
	const algorithm = (id: string) => sequence(oid(id));
	const name = sequence();
	const tbs = sequence(
		explicit(0, integer(2)),
		integer(1),
		algorithm(Oid.ECDSA_WITH_SHA256),
		name,
		sequence(tlv(0x17, new TextEncoder().encode("250101000000Z")), tlv(0x17, new TextEncoder().encode("350101000000Z"))),
		name,
		sequence(sequence(oid(Oid.EC_PUBLIC_KEY), oid(Oid.P256)), tlv(0x03, bytes(0, 4, 1, 2))),
		explicit(3, sequence(...(options.extensions ?? []))),
	);
	return sequence(tbs, algorithm(options.outerAlgorithm ?? Oid.ECDSA_WITH_SHA256), tlv(0x03, bytes(0, 0x30, 0)), options.trailing ?? bytes());
}

describe("a certificate", () => {
	it("from Apple yields the fields the chain check needs", () => {
		const leaf = parseCertificate(base64ToBytes(APPLE_RECEIPT_SIGNING_LEAF_2025));
		const intermediate = parseCertificate(base64ToBytes(APPLE_WWDR_CA_G6));
		expect(leaf).toMatchObject({
			signatureAlgorithm: Oid.ECDSA_WITH_SHA384,
			notBefore: Date.UTC(2025, 8, 19, 19, 44, 51),
			notAfter: Date.UTC(2027, 9, 13, 17, 47, 23),
			publicKeyAlgorithm: Oid.EC_PUBLIC_KEY,
			curve: Oid.P256,
			isCa: false,
		});
		expect(leaf.extensions.has("1.2.840.113635.100.6.11.1")).toBe(true);
		expect(leaf.issuer).toEqual(intermediate.subject);
		expect(intermediate).toMatchObject({ curve: Oid.P384, isCa: true, notAfter: Date.UTC(2036, 2, 19) });
		expect(intermediate.extensions.has("1.2.840.113635.100.6.2.1")).toBe(true);
		expect(leaf.signature[0]).toBe(0x30);
	});

	it("valid past 2049 has its GeneralizedTime read", async () => {
		const notAfter = Date.UTC(2051, 0, 2, 3, 4, 5);
		const issued = await issueCertificate({ notAfter });
		expect(parseCertificate(issued.der).notAfter).toBe(notAfter);
	});

	it("with a basicConstraints cA TRUE and no Apple extension reads as a plain CA", () => {
		const ca = parseCertificate(certificateWith({ extensions: [sequence(oid("2.5.29.19"), boolean(true), octetString(sequence(boolean(true))))] }));
		expect(ca.isCa).toBe(true);
		expect([...ca.extensions]).toEqual(["2.5.29.19"]);
	});

	const malformed: [string, Bytes][] = [
		["an extension that appears twice", certificateWith({ extensions: [sequence(oid("1.2.3"), octetString(bytes())), sequence(oid("1.2.3"), octetString(bytes()))] })],
		["a signature algorithm outside what is signed that differs from the one inside", certificateWith({ outerAlgorithm: Oid.ECDSA_WITH_SHA384 })],
		["trailing data after the signature", certificateWith({ trailing: utf8String("x") })],
		["basicConstraints that is not a SEQUENCE", certificateWith({ extensions: [sequence(oid("2.5.29.19"), octetString(boolean(true)))] })],
	];
	for (const [name, der] of malformed) {
		it(`with ${name} is refused as malformed`, () => {
			expect(refusal(() => parseCertificate(der))).toMatchObject({ name: "AppleVerificationError", code: "malformed" });
		});
	}

	it("cut short anywhere, or with any byte changed, is never read as anything but a typed refusal", async () => {
		const { leaf } = await createApplePki();
		const random = prng(7);
		const outcomes = new Set<string>();
		for (let cut = 0; cut < leaf.der.length; cut++) {
			const error = refusal(() => parseCertificate(leaf.der.subarray(0, cut)));
			expect(error, `cut at ${cut}`).toBeInstanceOf(AppleVerificationError);
		}
		for (let round = 0; round < 2000; round++) {
			const mutated = leaf.der.slice();
			mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
			try {
				parseCertificate(mutated);
				outcomes.add("parsed");
			} catch (error) {
				expect(error, `round ${round}`).toBeInstanceOf(AppleVerificationError);
				outcomes.add("refused");
			}
		}
		// Both outcomes occur, so the loop really exercised the refusals and not just one path.
		expect([...outcomes].sort()).toEqual(["parsed", "refused"]);
	});
});
