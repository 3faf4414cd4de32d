import { describe, expect, it } from "vitest";
import { AppleReceiptError } from "../src/apple/errors";
import { parseAppReceipt } from "../src/apple/receipt";
import { bytesToBase64 } from "./support/keys.ts";
import { integer, octetString, oid, sequence, set, tlv, utf8String } from "./support/der-writer.ts";
import { buildAppReceipt, buildAppReceiptBytes, type ReceiptInApp, type ReceiptSpec } from "./support/receipt-builder.ts";

const BUNDLE_ID = "com.example.iapedge";
const lifetime: ReceiptInApp = {
	transactionId: "2000000812345678",
	originalTransactionId: "2000000812345678",
	productId: "premium_lifetime",
	quantity: 1,
	purchaseDate: Date.UTC(2026, 0, 15, 12, 30, 5),
	originalPurchaseDate: Date.UTC(2026, 0, 15, 12, 30, 5),
};
const monthly: ReceiptInApp = {
	transactionId: "2000000812349999",
	originalTransactionId: "2000000800000001",
	productId: "premium_monthly",
	quantity: 1,
	purchaseDate: Date.UTC(2026, 1, 1),
	originalPurchaseDate: Date.UTC(2025, 11, 1),
	expiresDate: Date.UTC(2026, 2, 1),
	webOrderLineItemId: "2000000099999999",
};

function refusal(run: () => unknown): unknown {
	try {
		run();
	} catch (error) {
		return error;
	}
	throw new Error("expected a refusal, but the receipt was read");
}

describe("an app receipt", () => {
	const encodings: [string, Partial<ReceiptSpec>][] = [
		["DER, definite lengths", { encoding: "der", xcodeWrap: false }],
		["BER, indefinite lengths", { encoding: "ber", xcodeWrap: false }],
		["DER with Xcode's extra OCTET STRING wrap", { encoding: "der", xcodeWrap: true }],
		["BER with Xcode's wrap, as Xcode writes it", { encoding: "ber", xcodeWrap: true }],
	];
	for (const [name, encoding] of encodings) {
		it(`in ${name} yields its bundle id and every in-app purchase`, () => {
			const receipt = parseAppReceipt(buildAppReceipt({ bundleId: BUNDLE_ID, environment: "Production", appAppleId: 1234567890, inApp: [lifetime, monthly], ...encoding }));
			expect(receipt).toEqual({
				bundleId: BUNDLE_ID,
				receiptType: "Production",
				appAppleId: 1234567890,
				inApp: [
					{
						transactionId: "2000000812345678",
						originalTransactionId: "2000000812345678",
						productId: "premium_lifetime",
						quantity: 1,
						purchaseDate: Date.UTC(2026, 0, 15, 12, 30, 5),
						originalPurchaseDate: Date.UTC(2026, 0, 15, 12, 30, 5),
						expiresDate: null,
						webOrderLineItemId: null,
					},
					{
						transactionId: "2000000812349999",
						originalTransactionId: "2000000800000001",
						productId: "premium_monthly",
						quantity: 1,
						purchaseDate: Date.UTC(2026, 1, 1),
						originalPurchaseDate: Date.UTC(2025, 11, 1),
						expiresDate: Date.UTC(2026, 2, 1),
						webOrderLineItemId: "2000000099999999",
					},
				],
			});
		});
	}

	it("from Xcode, without original transaction ids, reads as Xcode wrote it", () => {
		const receipt = parseAppReceipt(buildAppReceipt({ bundleId: BUNDLE_ID, environment: "Xcode", inApp: [{ transactionId: "0", productId: "pass.premium", quantity: 3 }] }));
		expect(receipt).toMatchObject({ receiptType: "Xcode", appAppleId: null, inApp: [{ transactionId: "0", originalTransactionId: null, quantity: 3, purchaseDate: null }] });
	});

	it("with no in-app purchases yields an empty list", () => {
		expect(parseAppReceipt(buildAppReceipt({ bundleId: BUNDLE_ID, environment: "Sandbox" }))).toEqual({
			bundleId: BUNDLE_ID,
			receiptType: "ProductionSandbox",
			appAppleId: null,
			inApp: [],
		});
	});

	it("with many in-app purchases keeps them all, in order", () => {
		const inApp = Array.from({ length: 40 }, (_, i) => ({ ...lifetime, transactionId: String(1000 + i), productId: `coins_${i}` }));
		const receipt = parseAppReceipt(buildAppReceipt({ bundleId: BUNDLE_ID, inApp, encoding: "ber" }));
		expect(receipt.inApp.map((p) => p.transactionId)).toEqual(inApp.map((p) => p.transactionId));
	});

	it("with base64 broken over lines, as some clients send it, still reads", () => {
		const wrapped = buildAppReceipt({ bundleId: BUNDLE_ID, inApp: [lifetime] }).replace(/.{76}/g, "$&\n");
		expect(parseAppReceipt(wrapped).inApp).toHaveLength(1);
	});
});

const attribute = (type: number, value: Uint8Array) => sequence(integer(type), integer(1), octetString(value));
/** PKCS#7 SignedData around `content`, the encapsulated content's OCTET STRING as given (or a plain one around it). */
const container = (content: Uint8Array, asIs = false) =>
	bytesToBase64(
		sequence(oid("1.2.840.113549.1.7.2"), tlv(0xa0, sequence(integer(1), set(), sequence(oid("1.2.840.113549.1.7.1"), tlv(0xa0, asIs ? content : octetString(content))), set()))),
	);

describe("an app receipt's content", () => {
	const attributes = set(attribute(2, utf8String(BUNDLE_ID)), attribute(17, set(attribute(1702, utf8String("p")), attribute(1703, utf8String("42")))));

	it("split into several segments of a constructed OCTET STRING is joined before it is read", () => {
		const cut = 7;
		const segmented = tlv(0x24, octetString(attributes.subarray(0, cut)), tlv(0x24, octetString(attributes.subarray(cut, cut + 5))), octetString(attributes.subarray(cut + 5)));
		expect(parseAppReceipt(container(segmented, true))).toMatchObject({ bundleId: BUNDLE_ID, inApp: [{ transactionId: "42" }] });
	});

	it("wrapped in one more OCTET STRING is unwrapped, as Apple's ReceiptUtility does", () => {
		expect(parseAppReceipt(container(octetString(attributes)))).toMatchObject({ bundleId: BUNDLE_ID, inApp: [{ transactionId: "42" }] });
	});
});

describe("input that is not an app receipt", () => {
	const good = buildAppReceiptBytes({ bundleId: BUNDLE_ID, inApp: [lifetime, monthly], encoding: "ber", xcodeWrap: true });

	const cases: [string, string][] = [
		["empty", ""],
		["not base64", "this is not base64!"],
		["a JWS", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"],
		["PKCS#7 of another content type", bytesToBase64(sequence(oid("1.2.840.113549.1.7.1"), tlv(0xa0, octetString(new Uint8Array(4)))))],
		["a receipt without a bundle id", container(set(attribute(0, utf8String("Production"))))],
		["a receipt with two bundle ids", container(set(attribute(2, utf8String("a.b")), attribute(2, utf8String("c.d"))))],
		["an in-app purchase without a transaction id", container(set(attribute(2, utf8String(BUNDLE_ID)), attribute(17, set(attribute(1702, utf8String("p"))))))],
		[
			"an in-app purchase with a date that is not RFC 3339",
			container(set(attribute(2, utf8String(BUNDLE_ID)), attribute(17, set(attribute(1702, utf8String("p")), attribute(1703, utf8String("1")), attribute(1704, tlv(0x16, new TextEncoder().encode("15/01/2026"))))))),
		],
		["a receipt followed by trailing bytes", bytesToBase64(new Uint8Array([...good, 0x00]))],
	];
	for (const [name, input] of cases) {
		it(`is refused with an AppleReceiptError: ${name}`, () => {
			expect(refusal(() => parseAppReceipt(input))).toBeInstanceOf(AppleReceiptError);
		});
	}

	it("is refused with an AppleReceiptError however a real receipt is cut short", () => {
		for (let cut = 0; cut < good.length; cut++) {
			expect(refusal(() => parseAppReceipt(bytesToBase64(good.subarray(0, cut)))), `cut at ${cut}`).toBeInstanceOf(AppleReceiptError);
		}
	});

	it("is only ever refused with an AppleReceiptError when bytes are garbled", () => {
		let seed = 11;
		const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
		let refused = 0;
		for (let round = 0; round < 3000; round++) {
			const garbled = good.slice();
			garbled[Math.floor(random() * garbled.length)] = Math.floor(random() * 256);
			try {
				parseAppReceipt(bytesToBase64(garbled));
			} catch (error) {
				expect(error, `round ${round}`).toBeInstanceOf(AppleReceiptError);
				refused++;
			}
		}
		expect(refused).toBeGreaterThan(0);
	});
});
