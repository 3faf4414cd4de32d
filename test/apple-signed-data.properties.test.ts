import fc from "fast-check";
import { base64url } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ecdsaSignatureToRaw, type TrustStore } from "../src/apple/chain";
import { base64ToBytes } from "../src/apple/der";
import { AppleVerificationError } from "../src/apple/errors";
import { createTrustStore } from "../src/apple/roots";
import { verifyAppleSignedData, verifyAppleTransaction, type AppleAppPolicy } from "../src/apple/signed-data";
import { parseCertificate } from "../src/apple/x509";
import { boundedAsync, onlyThrows, VERIFY_BOUND_MS, type Outcome } from "./support/bounded.ts";
import { bytesToBase64 } from "./support/keys.ts";
import { applyByteMutations, applyTextMutations, byteMutations, textMutations } from "./support/mutations.ts";
import { base64Url, createApplePki, signJws, type ApplePki } from "./support/pki.ts";

/**
 * Properties of Apple signed-data verification over untrusted JWS text: it refuses with AppleVerificationError and
 * nothing else, never slowly, and no damage to a valid signed transaction makes it verify, short of damage that
 * leaves the signed text and the signature bytes as they were.
 */

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 0, 15, 12);
const within = { notBefore: NOW - 30 * DAY, notAfter: NOW + 365 * DAY };
const APP: AppleAppPolicy = { bundleId: "com.example.iapedge", appAppleId: 1234567890, allowLocalTesting: false };
const TRANSACTION = {
	transactionId: "2000000812345678",
	originalTransactionId: "2000000812345678",
	bundleId: APP.bundleId,
	productId: "premium_lifetime",
	purchaseDate: NOW - 5000,
	quantity: 1,
	type: "Non-Consumable",
	signedDate: NOW,
	environment: "Production",
};

let pki: ApplePki;
let roots: TrustStore;
let valid: string;
beforeAll(async () => {
	pki = await createApplePki({ root: within, intermediate: within, leaf: within });
	roots = createTrustStore([pki.root.base64]);
	valid = await signJws(TRANSACTION, pki.leaf.keyPair.privateKey, pki.x5c);
});

/** Both entry points, local testing off: every outcome, and the time each took. */
async function verifyBoth(jws: string): Promise<Outcome<unknown>[]> {
	return [
		await boundedAsync(VERIFY_BOUND_MS, () => verifyAppleSignedData(jws, { roots, allowLocalTesting: false, now: NOW })),
		await boundedAsync(VERIFY_BOUND_MS, () => verifyAppleTransaction(jws, { roots, app: APP, acceptSandbox: true, now: NOW })),
	];
}

/** Refused, and only with an AppleVerificationError. */
function expectRefused(outcomes: Outcome<unknown>[]): void {
	for (const outcome of outcomes) {
		expect(outcome.ok, "verified").toBe(false);
		onlyThrows(outcome, AppleVerificationError);
	}
}

/** What the signature covers and the signature's bytes, as the verifier reads them (lenient base64url decoding). */
function signedParts(jws: string): { signingInput: string; signature: string } | undefined {
	const parts = jws.split(".");
	if (parts.length !== 3) return undefined;
	try {
		return { signingInput: `${parts[0]}.${parts[1]}`, signature: bytesToBase64(base64url.decode(parts[2]!)) };
	} catch {
		return undefined;
	}
}

/** JSON of any shape, objects and arrays a few levels deep, strings of any code points. */
const anyJson = fc.jsonValue({ maxDepth: 3 });

const header = fc.oneof(
	anyJson,
	fc.record(
		{
			alg: fc.oneof({ weight: 4, arbitrary: fc.constant("ES256") }, fc.constantFrom("none", "HS256", "ES384", "es256"), anyJson),
			x5c: fc.oneof(
				fc.constant("real"),
				fc.array(fc.oneof(fc.string(), fc.base64String({ maxLength: 200 })), { maxLength: 4 }),
				fc.tuple(fc.nat({ max: 2 }), byteMutations).map(([which, mutations]) => ({ which, mutations })),
				anyJson,
			),
			kid: anyJson,
			crit: fc.array(fc.string()),
		},
		{ requiredKeys: ["alg"] },
	),
);

const payload = fc.oneof(
	anyJson,
	fc.record(
		{
			environment: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("Production", "Sandbox", "Xcode", "LocalTesting") }, anyJson),
			receiptType: fc.constantFrom("Production", "Sandbox"),
			data: fc.record({ environment: fc.constantFrom("Production", "Sandbox", "Xcode") }),
			signedDate: fc.oneof(fc.double(), fc.integer(), fc.constant(NOW), anyJson),
			receiptCreationDate: fc.oneof(fc.double(), anyJson),
			transactionId: fc.oneof(fc.string(), anyJson),
			originalTransactionId: fc.oneof(fc.string(), anyJson),
			bundleId: fc.oneof(fc.constant(APP.bundleId), fc.string()),
			productId: fc.oneof(fc.string(), anyJson),
			purchaseDate: fc.oneof(fc.double(), anyJson),
			appAppleId: fc.oneof(fc.constant(APP.appAppleId), fc.integer()),
		},
		{ requiredKeys: [] },
	),
);

/** The header's x5c as generated: the real chain, a chain with one certificate damaged, or whatever was drawn. */
function x5cOf(drawn: unknown): unknown {
	if (drawn === "real") return pki.x5c;
	if (typeof drawn === "object" && drawn !== null && "mutations" in drawn) {
		const { which, mutations } = drawn as { which: number; mutations: Parameters<typeof applyByteMutations>[1] };
		const x5c: string[] = [...pki.x5c];
		x5c[which] = bytesToBase64(applyByteMutations(base64ToBytes(x5c[which]!), mutations));
		return x5c;
	}
	return drawn;
}

const segment = (value: unknown) => base64Url(JSON.stringify(value));
const signature = fc.oneof(
	fc.uint8Array({ minLength: 64, maxLength: 64 }).map(base64Url),
	fc.uint8Array({ maxLength: 100 }).map(base64Url),
	fc.string({ maxLength: 90 }),
);

describe("Apple signed data, from untrusted text", () => {
	it("is refused with an AppleVerificationError whatever the string", async () => {
		const text = fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.stringMatching(/^[\w-]{0,40}\.[\w-]{0,40}\.[\w-]{0,90}$/), fc.stringMatching(/^[\w.=+/-]{0,120}$/));
		await fc.assert(
			fc.asyncProperty(text, async (jws) => expectRefused(await verifyBoth(jws))),
			{ numRuns: 200 },
		);
	});

	it("is refused with an AppleVerificationError whatever JSON its header and payload hold", async () => {
		await fc.assert(
			fc.asyncProperty(header, payload, signature, async (h, p, s) => {
				const headerValue = typeof h === "object" && h !== null && !Array.isArray(h) && "x5c" in h ? { ...h, x5c: x5cOf(h.x5c) } : h;
				expectRefused(await verifyBoth(`${segment(headerValue)}.${segment(p)}.${s}`));
			}),
			{ numRuns: 300 },
		);
	});

	it("is refused when its parts are base64url of text that is not JSON", async () => {
		const part = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }).map(base64Url), fc.uint8Array({ maxLength: 40 }).map(base64Url));
		await fc.assert(
			fc.asyncProperty(part, part, signature, async (h, p, s) => expectRefused(await verifyBoth(`${h}.${p}.${s}`))),
			{ numRuns: 100 },
		);
	});

	it("is accepted unverified where local testing is on only when it says it is from Xcode or LocalTesting", async () => {
		await fc.assert(
			fc.asyncProperty(header, payload, signature, async (h, p, s) => {
				const outcome = await boundedAsync(VERIFY_BOUND_MS, () => verifyAppleSignedData(`${segment(h)}.${segment(p)}.${s}`, { roots, allowLocalTesting: true, now: NOW }));
				onlyThrows(outcome, AppleVerificationError);
				if (outcome.ok) expect(["Xcode", "LocalTesting"]).toContain(outcome.value.environment);
			}),
			{ numRuns: 100 },
		);
	});

	// Found by fast-check: decodeHeader's deepFreeze once recursed per level of nesting, so a header some eleven
	// thousand levels deep overflowed the stack (a RangeError, not an AppleVerificationError).
	it("is refused with an AppleVerificationError however deeply its header nests", async () => {
		const nested = (depth: number) => `{"alg":"ES256","n":${"[".repeat(depth)}${"]".repeat(depth)}}`;
		await fc.assert(
			fc.asyncProperty(fc.integer({ min: 1, max: 100_000 }), async (depth) => {
				expectRefused(await verifyBoth(`${base64Url(nested(depth))}.${segment({ environment: "Production" })}.${base64Url(new Uint8Array(64))}`));
			}),
			{ numRuns: 10, examples: [[100_000]] },
		);
	});
});

describe("a valid signed transaction, damaged", () => {
	it("is verified as it was signed (the starting point of the properties below)", async () => {
		expect((await verifyAppleTransaction(valid, { roots, app: APP, acceptSandbox: false, now: NOW })).payload.transactionId).toBe(TRANSACTION.transactionId);
	});

	it("never verifies unless the signed text and the signature bytes are unchanged", async () => {
		const original = signedParts(valid)!;
		await fc.assert(
			fc.asyncProperty(textMutations, async (mutations) => {
				const damaged = applyTextMutations(valid, mutations);
				for (const outcome of await verifyBoth(damaged)) {
					onlyThrows(outcome, AppleVerificationError);
					// base64url's last character carries spare bits, so a changed character can decode to the same signature.
					if (outcome.ok) expect(signedParts(damaged)).toEqual(original);
				}
			}),
			{ numRuns: 500 },
		);
	});

	it("with another payload under the same header and signature, never verifies", async () => {
		const [headerSegment, payloadSegment, signatureSegment] = valid.split(".") as [string, string, string];
		const changedField = fc
			.tuple(fc.constantFrom(...Object.keys(TRANSACTION)), anyJson)
			.map(([field, value]) => ({ ...TRANSACTION, [field]: value }));
		await fc.assert(
			fc.asyncProperty(fc.oneof(changedField, payload), async (other) => {
				const otherSegment = segment(other);
				fc.pre(otherSegment !== payloadSegment);
				expectRefused(await verifyBoth(`${headerSegment}.${otherSegment}.${signatureSegment}`));
			}),
			{ numRuns: 200 },
		);
	});

	it("re-signed with a damaged leaf or intermediate in x5c, verifies only if what the certificate's issuer signed is unchanged", async () => {
		await fc.assert(
			fc.asyncProperty(fc.nat({ max: 1 }), byteMutations, async (which, mutations) => {
				const originalDer = base64ToBytes(pki.x5c[which]!);
				const damagedDer = applyByteMutations(originalDer, mutations);
				const x5c = [...pki.x5c];
				x5c[which] = bytesToBase64(damagedDer);
				const jws = await signJws(TRANSACTION, pki.leaf.keyPair.privateKey, x5c);
				for (const outcome of await verifyBoth(jws)) {
					onlyThrows(outcome, AppleVerificationError);
					if (outcome.ok) {
						// Both certificates are issued by a P-384 key: r‖s of 48 bytes each, however the INTEGERs were padded.
						const [before, after] = [parseCertificate(originalDer), parseCertificate(damagedDer)];
						expect([after.tbs, ecdsaSignatureToRaw(after.signature, 48)]).toEqual([before.tbs, ecdsaSignatureToRaw(before.signature, 48)]);
					}
				}
			}),
			{ numRuns: 200 },
		);
	});
});
