import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppleReceiptError } from "../src/apple/errors";
import { parseAppReceipt, type AppReceipt } from "../src/apple/receipt";
import { bounded, onlyThrows, PARSE_BOUND_MS } from "./support/bounded.ts";
import { derElement, largeDer } from "./support/der-arbitrary.ts";
import { bytesToBase64 } from "./support/keys.ts";
import { applyByteMutations, byteMutations } from "./support/mutations.ts";
import { buildAppReceipt, buildAppReceiptBytes, type ReceiptInApp, type ReceiptSpec } from "./support/receipt-builder.ts";

/**
 * Properties of the legacy receipt parser over untrusted input: it returns a receipt or throws AppleReceiptError,
 * nothing else, and never slowly; and what receipt-builder.ts writes, it reads back.
 */

const ENCODINGS: Pick<ReceiptSpec, "encoding" | "xcodeWrap">[] = [
	{ encoding: "der", xcodeWrap: false },
	{ encoding: "ber", xcodeWrap: false },
	{ encoding: "der", xcodeWrap: true },
	{ encoding: "ber", xcodeWrap: true },
];
const encoding = fc.constantFrom(...ENCODINGS);

/** Receipts to damage, one per encoding, each with a non-consumable and a subscription. */
const receipts = ENCODINGS.map((shape) =>
	buildAppReceiptBytes({
		bundleId: "com.example.iapedge",
		environment: "Production",
		appAppleId: 1234567890,
		...shape,
		inApp: [
			{ transactionId: "1000000812345678", originalTransactionId: "1000000812345678", productId: "premium_lifetime", purchaseDate: Date.UTC(2026, 0, 15, 12, 30, 5) },
			{
				transactionId: "1000000812349999",
				originalTransactionId: "1000000800000001",
				productId: "premium_monthly",
				purchaseDate: Date.UTC(2026, 1, 1),
				expiresDate: Date.UTC(2026, 2, 1),
				webOrderLineItemId: "2000000099999999",
			},
		],
	}),
);

function expectSane(receipt: AppReceipt): void {
	expect(typeof receipt.bundleId).toBe("string");
	for (const purchase of receipt.inApp) {
		expect(purchase.transactionId.length > 0 && purchase.productId.length > 0).toBe(true);
		expect(Number.isSafeInteger(purchase.quantity) && purchase.quantity >= 0).toBe(true);
		for (const date of [purchase.purchaseDate, purchase.originalPurchaseDate, purchase.expiresDate]) expect(date === null || Number.isFinite(date)).toBe(true);
	}
}

function parse(base64: string, boundMs = PARSE_BOUND_MS): AppReceipt | undefined {
	const outcome = bounded(boundMs, () => parseAppReceipt(base64));
	onlyThrows(outcome, AppleReceiptError);
	if (!outcome.ok) return undefined;
	expectSane(outcome.value);
	return outcome.value;
}

describe("the receipt parser, on untrusted input", () => {
	it("reads any text as a receipt or refuses it with an AppleReceiptError", () => {
		const text = fc.oneof(fc.string({ unit: "binary", maxLength: 100 }), fc.base64String({ maxLength: 400 }), fc.stringMatching(/^[A-Za-z0-9+/\s=]{0,200}$/));
		fc.assert(
			fc.property(text, (input) => void parse(input)),
			{ numRuns: 300 },
		);
	});

	it("reads any bytes, random DER included, as a receipt or refuses them with an AppleReceiptError", () => {
		const bytes = fc.oneof({ weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) }, { weight: 2, arbitrary: derElement }, { weight: 1, arbitrary: largeDer(256 * 1024) });
		fc.assert(
			fc.property(bytes, (input) => void parse(bytesToBase64(input))),
			{ numRuns: 300 },
		);
	});

	it("reads a damaged receipt, in any encoding, or refuses it with an AppleReceiptError", () => {
		fc.assert(
			fc.property(fc.nat({ max: receipts.length - 1 }), byteMutations, (which, mutations) => void parse(bytesToBase64(applyByteMutations(receipts[which]!, mutations)))),
			{ numRuns: 1000 },
		);
	});
});

/** Text the builder writes as UTF-8 unchanged: whole graphemes, so no lone surrogates. */
const text = (minLength: number) => fc.oneof(fc.string({ unit: "grapheme", minLength, maxLength: 30 }), fc.string({ unit: "binary-ascii", minLength, maxLength: 30 }));
/** Whole seconds: the builder writes RFC 3339 without fractions. Years 0-99: see the property further down. */
const seconds = (from: string, to: string) =>
	fc.date({ min: new Date(from), max: new Date(to), noInvalidDate: true }).map((d) => Math.floor(d.getTime() / 1000) * 1000);
const dateFromYear100 = seconds("0100-01-01T00:00:00Z", "9999-12-31T23:59:59Z");

const inApp = (date: fc.Arbitrary<number>): fc.Arbitrary<ReceiptInApp> =>
	fc.record(
		{
			transactionId: text(1),
			originalTransactionId: text(0),
			productId: text(1),
			quantity: fc.oneof(fc.nat({ max: 10 }), fc.maxSafeNat()),
			purchaseDate: date,
			originalPurchaseDate: date,
			expiresDate: date,
			webOrderLineItemId: fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
		},
		{ requiredKeys: ["transactionId", "productId"] },
	);

function expected(purchase: ReceiptInApp) {
	return {
		transactionId: purchase.transactionId,
		originalTransactionId: purchase.originalTransactionId ?? null,
		productId: purchase.productId,
		quantity: purchase.quantity ?? 1,
		purchaseDate: purchase.purchaseDate ?? null,
		originalPurchaseDate: purchase.originalPurchaseDate ?? null,
		expiresDate: purchase.expiresDate ?? null,
		webOrderLineItemId: purchase.webOrderLineItemId ?? null,
	};
}

describe("a receipt receipt-builder.ts writes", () => {
	it("reads back with its bundle id, type, app id and every in-app purchase, in any encoding", () => {
		const spec = fc.record({
			bundleId: text(0),
			environment: fc.constantFrom("Production" as const, "Sandbox" as const, "Xcode" as const),
			appAppleId: fc.option(fc.maxSafeNat(), { nil: undefined }),
			inApp: fc.array(inApp(dateFromYear100), { maxLength: 5 }),
		});
		fc.assert(
			fc.property(spec, encoding, (receipt, shape) => {
				const read = parse(buildAppReceipt({ ...receipt, ...shape }));
				expect(read).toEqual({
					bundleId: receipt.bundleId,
					receiptType: receipt.environment === "Sandbox" ? "ProductionSandbox" : receipt.environment,
					appAppleId: receipt.appAppleId ?? null,
					inApp: receipt.inApp.map(expected),
				});
			}),
			{ numRuns: 150 },
		);
	});

	// Up to ~470 KB of base64, near the service's body limit: about 20 ms here, so 250 ms leaves room for a loaded
	// machine while a quadratic reader (seconds at this size) would still fail.
	it("with a thousand purchases, as years of renewals make, reads within the bound", () => {
		const many = fc.tuple(inApp(dateFromYear100), fc.integer({ min: 500, max: 1500 }), encoding);
		fc.assert(
			fc.property(many, ([purchase, count, shape]) => {
				const read = parse(buildAppReceipt({ bundleId: "com.example.iapedge", inApp: Array(count).fill(purchase), ...shape }), 250);
				expect(read?.inApp.length).toBe(count);
			}),
			{ numRuns: 5 },
		);
	});

	// Found by fast-check: Date.UTC reads years 0-99 as 1900-1999 ("0000-01-01T00:00:00Z" read as 1900-01-01).
	it("reads back purchase dates in the years 0-99", () => {
		const early = seconds("0000-01-01T00:00:00Z", "0099-12-31T23:59:59Z");
		fc.assert(
			fc.property(early, (purchaseDate) => {
				const read = parse(buildAppReceipt({ bundleId: "b", inApp: [{ transactionId: "1", productId: "p", purchaseDate }] }));
				expect(read?.inApp[0]?.purchaseDate).toBe(purchaseDate);
			}),
			{ numRuns: 20 },
		);
	});
});
