import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { clearChainCache, type TrustStore } from "../src/apple/chain";
import { AppleVerificationError } from "../src/apple/errors";
import { createTrustStore, defaultTrustStore } from "../src/apple/roots";
import { verifyAppleRenewalInfo, verifyAppleSignedData, verifyAppleTransaction, type AppleAppPolicy } from "../src/apple/signed-data";
import { base64Url, createApplePki, signJws, type ApplePki } from "./support/pki.ts";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 0, 15, 12);
const within = { notBefore: NOW - 30 * DAY, notAfter: NOW + 365 * DAY };
const APP: AppleAppPolicy = { bundleId: "com.example.iapedge", appAppleId: 1234567890, allowLocalTesting: false };

let pki: ApplePki;
let roots: TrustStore;
beforeAll(async () => {
	pki = await createApplePki({ root: within, intermediate: within, leaf: within });
	roots = createTrustStore([pki.root.base64]);
});
beforeEach(() => clearChainCache());
afterEach(() => vi.restoreAllMocks());

const TRANSACTION = {
	transactionId: "2000000812345678", originalTransactionId: "2000000812345678", bundleId: APP.bundleId, productId: "premium_lifetime",
	purchaseDate: NOW - 5000, quantity: 1, type: "Non-Consumable", signedDate: NOW, environment: "Production", storefront: "USA",
};
const transaction = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ ...TRANSACTION, ...overrides });

const sign = (payload: unknown, header?: Record<string, unknown>) => signJws(payload, pki.leaf.keyPair.privateKey, pki.x5c, header);
const verifyTransaction = (jws: string, options: { acceptSandbox?: boolean; app?: Partial<AppleAppPolicy> } = {}) =>
	verifyAppleTransaction(jws, { roots, app: { ...APP, ...options.app }, acceptSandbox: options.acceptSandbox ?? false, now: NOW });

async function refusal(promise: Promise<unknown>): Promise<AppleVerificationError> {
	try {
		await promise;
	} catch (error) {
		if (error instanceof AppleVerificationError) return error;
		throw new Error(`refused with something other than an AppleVerificationError: ${String(error)}`);
	}
	throw new Error("expected a refusal, but the signed data was accepted");
}

/** A JWS assembled by hand, for headers and signatures the App Store would never produce. */
function assemble(header: unknown, payload: unknown, signature: Uint8Array | string = ""): string {
	const encoded = typeof signature === "string" ? signature : base64Url(signature);
	return `${base64Url(JSON.stringify(header))}.${base64Url(JSON.stringify(payload))}.${encoded}`;
}

describe("a transaction signed by a trusted chain", () => {
	it("is accepted, with its payload and environment", async () => {
		const result = await verifyTransaction(await sign(transaction({ futureField: { kept: true } })));
		expect(result.environment).toBe("Production");
		expect(result.header).toMatchObject({ alg: "ES256", x5c: pki.x5c });
		expect(result.payload).toMatchObject({ transactionId: "2000000812345678", productId: "premium_lifetime", futureField: { kept: true } });
	});

	it("shares its decoded header with later data from the same leaf only read-only", async () => {
		const first = await verifyTransaction(await sign(transaction()));
		const second = await verifyTransaction(await sign(transaction({ transactionId: "2000000812345679" })));
		expect(Object.isFrozen(first.header) && Object.isFrozen(first.header.x5c)).toBe(true);
		expect(() => (first.header.x5c as string[]).push("injected")).toThrow(TypeError);
		expect(second.header.x5c).toEqual(pki.x5c);
	});

	it("has fractional milliseconds truncated, as Apple's libraries do", async () => {
		const { payload } = await verifyTransaction(await sign(transaction({ purchaseDate: 1697679936049.7297, signedDate: NOW + 0.9 })));
		expect(payload.purchaseDate).toBe(1697679936049);
		expect(payload.signedDate).toBe(NOW);
	});

	it("is accepted from Sandbox where the app accepts Sandbox, whatever appAppleId it names", async () => {
		const result = await verifyTransaction(await sign(transaction({ environment: "Sandbox", appAppleId: 1 })), { acceptSandbox: true });
		expect(result.environment).toBe("Sandbox");
	});
});

describe("a transaction for another app or environment", () => {
	it("is refused when its bundleId is another app's", async () => {
		const error = await refusal(verifyTransaction(await sign(transaction({ bundleId: "com.example.other" }))));
		expect(error.code).toBe("wrong_bundle_id");
	});

	it("is refused from Sandbox where only Production is accepted", async () => {
		const error = await refusal(verifyTransaction(await sign(transaction({ environment: "Sandbox" }))));
		expect(error.code).toBe("environment_not_accepted");
	});

	it("is refused in Production when it names a different appAppleId", async () => {
		const error = await refusal(verifyTransaction(await sign(transaction({ appAppleId: 987654321 }))));
		expect(error.code).toBe("wrong_app_apple_id");
		await expect(verifyTransaction(await sign(transaction({ appAppleId: APP.appAppleId })))).resolves.toBeDefined();
	});

	it("is refused when it is not a transaction", async () => {
		for (const payload of [transaction({ transactionId: undefined }), transaction({ purchaseDate: "yesterday" }), transaction({ quantity: -1 })]) {
			expect((await refusal(verifyTransaction(await sign(payload)))).code).toBe("malformed");
		}
	});
});

describe("the JWS header", () => {
	it("with alg none is refused", async () => {
		const error = await refusal(verifyTransaction(assemble({ alg: "none", x5c: pki.x5c }, transaction())));
		expect(error.code).toBe("unsupported_algorithm");
	});

	it("with HS256 keyed with the leaf's public key is refused", async () => {
		const spki = await crypto.subtle.exportKey("spki", pki.leaf.keyPair.publicKey);
		const hmac = await crypto.subtle.importKey("raw", spki as ArrayBuffer, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
		const input = `${base64Url(JSON.stringify({ alg: "HS256", x5c: pki.x5c }))}.${base64Url(JSON.stringify(transaction()))}`;
		const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(input)));
		expect((await refusal(verifyTransaction(`${input}.${base64Url(mac)}`))).code).toBe("unsupported_algorithm");
	});

	it("with RS256, ES384, a lowercase es256 or no alg at all is refused", async () => {
		for (const alg of ["RS256", "ES384", "es256", undefined]) {
			const error = await refusal(verifyTransaction(await sign(transaction(), { alg })));
			expect(error.code, String(alg)).toBe("unsupported_algorithm");
		}
	});

	it("with critical extensions is refused", async () => {
		expect((await refusal(verifyTransaction(await sign(transaction(), { crit: ["b64"], b64: false })))).code).toBe("unsupported_algorithm");
	});

	it("without x5c, or with two or four certificates in it, is refused", async () => {
		expect((await refusal(verifyTransaction(await sign(transaction(), { x5c: undefined })))).code).toBe("malformed");
		for (const x5c of [pki.x5c.slice(0, 2), [...pki.x5c, pki.x5c[2]]]) {
			expect((await refusal(verifyTransaction(await sign(transaction(), { x5c })))).code).toBe("invalid_chain_length");
		}
	});

	it("with a chain to a root nobody configured is refused", async () => {
		const stranger = await createApplePki();
		const jws = await signJws(transaction(), stranger.leaf.keyPair.privateKey, stranger.x5c);
		expect((await refusal(verifyTransaction(jws))).code).toBe("untrusted_chain");
		expect((await refusal(verifyAppleSignedData(await sign(transaction()), { roots: defaultTrustStore(), allowLocalTesting: false }))).code).toBe("untrusted_chain");
	});
});

describe("the signature", () => {
	it("is refused when the payload was changed after signing", async () => {
		const [header, , signature] = (await sign(transaction())).split(".");
		const tampered = `${header}.${base64Url(JSON.stringify(transaction({ productId: "coins_100000" })))}.${signature}`;
		expect((await refusal(verifyTransaction(tampered))).code).toBe("invalid_signature");
	});

	it("is refused when made by a key other than the leaf's", async () => {
		const other = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])) as CryptoKeyPair;
		expect((await refusal(verifyTransaction(await signJws(transaction(), other.privateKey, pki.x5c)))).code).toBe("invalid_signature");
	});

	it("is refused when DER-encoded, or cut short, instead of 64 bytes r‖s", async () => {
		const jws = await sign(transaction());
		const [header, payload, signature] = jws.split(".") as [string, string, string];
		const raw = Uint8Array.from(atob(signature.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
		const der = new Uint8Array([0x30, 68, 0x02, 32, ...raw.subarray(0, 32), 0x02, 32, ...raw.subarray(32)]);
		for (const bad of [der, raw.subarray(0, 63), new Uint8Array()]) {
			expect((await refusal(verifyTransaction(`${header}.${payload}.${base64Url(bad)}`))).code).toBe("invalid_signature");
		}
	});
});

describe("the effective date", () => {
	it("is the signedDate: data signed while the leaf was valid passes after it expired", async () => {
		const expired = await createApplePki({ root: within, intermediate: within, leaf: { notBefore: NOW - 10 * DAY, notAfter: NOW - DAY } });
		const jws = await signJws(transaction({ signedDate: NOW - 2 * DAY }), expired.leaf.keyPair.privateKey, expired.x5c);
		const options = { roots: createTrustStore([expired.root.base64]), app: APP, acceptSandbox: false, now: NOW };
		await expect(verifyAppleTransaction(jws, options)).resolves.toBeDefined();
		const late = await signJws(transaction({ signedDate: NOW }), expired.leaf.keyPair.privateKey, expired.x5c);
		expect((await refusal(verifyAppleTransaction(late, options))).code).toBe("certificate_not_valid_at_date");
	});

	it("refuses data signed before the leaf was valid, even once the chain is cached", async () => {
		await verifyTransaction(await sign(transaction()));
		const verify = vi.spyOn(crypto.subtle, "verify");
		const error = await refusal(verifyTransaction(await sign(transaction({ signedDate: within.notBefore - 2 * DAY }))));
		expect(error.code).toBe("certificate_not_valid_at_date");
		expect(verify).not.toHaveBeenCalled();
	});

	it("falls back to receiptCreationDate, then to now", async () => {
		const appTransaction = { receiptType: "Production", bundleId: APP.bundleId, receiptCreationDate: within.notAfter + DAY };
		const options = { roots, allowLocalTesting: false, now: NOW };
		expect((await refusal(verifyAppleSignedData(await sign(appTransaction), options))).code).toBe("certificate_not_valid_at_date");
		const undated = transaction({ signedDate: undefined });
		await expect(verifyAppleSignedData(await sign(undated), options)).resolves.toMatchObject({ environment: "Production" });
		expect((await refusal(verifyAppleSignedData(await sign(undated), { ...options, now: within.notAfter + DAY }))).code).toBe("certificate_not_valid_at_date");
	});

	it("is the signedDate truncated to whole milliseconds before it meets a validity window", async () => {
		const lastMoment = within.notAfter + 60_000;
		await expect(verifyTransaction(await sign(transaction({ signedDate: lastMoment + 0.9 })))).resolves.toBeDefined();
		expect((await refusal(verifyTransaction(await sign(transaction({ signedDate: lastMoment + 1 }))))).code).toBe("certificate_not_valid_at_date");
	});

	it("is refused when signedDate is not a number", async () => {
		expect((await refusal(verifyTransaction(await sign(transaction({ signedDate: "2026-01-15" }))))).code).toBe("malformed");
	});
});

describe("Xcode- and LocalTesting-signed data", () => {
	async function xcodeSigned(payload: Record<string, unknown>) {
		const key = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])) as CryptoKeyPair;
		return signJws(payload, key.privateKey, [pki.leaf.base64], { kid: "Apple_Xcode_Key", typ: "JWT" });
	}

	for (const environment of ["Xcode", "LocalTesting"]) {
		it(`from ${environment} is refused where local testing is off`, async () => {
			const error = await refusal(verifyTransaction(await xcodeSigned(transaction({ environment }))));
			expect(error.code).toBe("local_testing_not_allowed");
		});

		it(`from ${environment} is accepted unverified where local testing is on`, async () => {
			const result = await verifyTransaction(await xcodeSigned(transaction({ environment, signedDate: 1697679936049.7297 })), { app: { allowLocalTesting: true } });
			expect(result).toMatchObject({ environment, header: { kid: "Apple_Xcode_Key" }, payload: { signedDate: 1697679936049 } });
		});
	}

	it("must still be for this app and well-formed where local testing is on", async () => {
		const app = { allowLocalTesting: true };
		expect((await refusal(verifyTransaction(await xcodeSigned(transaction({ environment: "Xcode", bundleId: "com.other" })), { app }))).code).toBe("wrong_bundle_id");
		expect((await refusal(verifyTransaction(assemble({ alg: "none" }, transaction({ environment: "Xcode" })), { app }))).code).toBe("unsupported_algorithm");
		const broken = (await xcodeSigned(transaction({ environment: "Xcode" }))).replace(/\.[^.]*$/, ".");
		expect((await refusal(verifyTransaction(broken, { app }))).code).toBe("invalid_signature");
	});

	it("claiming Production with Xcode's one-certificate header is chain-checked, and refused", async () => {
		const error = await refusal(verifyTransaction(await xcodeSigned(transaction()), { app: { allowLocalTesting: true } }));
		expect(error.code).toBe("invalid_chain_length");
	});
});

describe("renewal info", () => {
	const RENEWAL = { originalTransactionId: "2000000812345678", productId: "premium_monthly", autoRenewStatus: 1, signedDate: NOW, environment: "Production" };
	const renewal = (overrides: Record<string, unknown> = {}) => ({ ...RENEWAL, renewalDate: NOW + 30 * DAY, ...overrides });
	const verifyRenewal = async (payload: Record<string, unknown>, acceptSandbox = false) =>
		verifyAppleRenewalInfo(await sign(payload), { roots, app: { allowLocalTesting: false }, acceptSandbox, now: NOW });

	it("is accepted with its payload", async () => {
		await expect(verifyRenewal(renewal())).resolves.toMatchObject({ environment: "Production", payload: { autoRenewStatus: 1 } });
	});

	it("from Sandbox is refused unless Sandbox is accepted", async () => {
		expect((await refusal(verifyRenewal(renewal({ environment: "Sandbox" })))).code).toBe("environment_not_accepted");
		await expect(verifyRenewal(renewal({ environment: "Sandbox" }), true)).resolves.toMatchObject({ environment: "Sandbox" });
	});

	it("without an originalTransactionId is refused", async () => {
		expect((await refusal(verifyRenewal(renewal({ originalTransactionId: undefined })))).code).toBe("malformed");
	});
});

describe("a notification", () => {
	it("has its environment read from data, as Apple's verifier reads it", async () => {
		const notification = { notificationType: "TEST", notificationUUID: crypto.randomUUID(), data: { bundleId: APP.bundleId, environment: "Sandbox" }, signedDate: NOW };
		await expect(verifyAppleSignedData(await sign(notification), { roots, allowLocalTesting: false })).resolves.toMatchObject({ environment: "Sandbox" });
	});
});

describe("input that is not a JWS", () => {
	it("is refused as malformed, whatever it is", async () => {
		const good = await sign(transaction());
		const [header, payload, signature] = good.split(".") as [string, string, string];
		const inputs = ["", "a.b", "a.b.c", `${good}.${signature}`, `${header}.${payload}`, `${header}!.${payload}.${signature}`, `${header}.+/${payload.slice(2)}.${signature}`];
		const payloads = ["{not json", "[1,2]", JSON.stringify({ productId: "x" }), JSON.stringify(transaction({ environment: "Staging" }))];
		inputs.push(`${base64Url("{not json")}.${payload}.${signature}`, ...payloads.map((p) => `${header}.${base64Url(p)}.${signature}`));
		for (const input of inputs) {
			expect((await refusal(verifyTransaction(input))).code, input.slice(0, 40)).toBe("malformed");
		}
	});

	it("is only ever refused with a typed error, however it was cut", async () => {
		const good = await sign(transaction());
		const codes = new Set<string>();
		for (let cut = 0; cut < good.length; cut += 37) codes.add((await refusal(verifyTransaction(good.slice(0, cut)))).code);
		expect(codes.size).toBeGreaterThan(1);
	});

	it("gets messages that carry no certificate or key material", async () => {
		const stranger = await createApplePki();
		const failures = [
			await refusal(verifyTransaction(await signJws(transaction(), stranger.leaf.keyPair.privateKey, stranger.x5c))),
			await refusal(verifyTransaction(await sign(transaction(), { x5c: [pki.x5c[0], "AAAA", pki.x5c[2]] }))),
			await refusal(verifyTransaction(await signJws(transaction(), stranger.leaf.keyPair.privateKey, pki.x5c))),
		];
		for (const error of failures) {
			for (const secret of [...pki.x5c, ...stranger.x5c]) expect(error.message).not.toContain(secret.slice(40, 80));
			expect(error.message).not.toContain("PRIVATE KEY");
		}
	});
});
