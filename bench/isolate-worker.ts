/**
 * The benchmark's Worker: our App Store verification measured inside workerd, where it runs in production, next to
 * one raw WebCrypto ES256 verify in the same isolate. bench/isolate.ts bundles it and runs many copies of it under
 * Miniflare, one isolate each, so that "the first call in a new isolate" can be measured many times.
 *
 * It does the work and nothing else; the timing is done outside, by bench/isolate.ts, from the workerd process's CPU
 * time (performance.now() inside workerd only moves in whole milliseconds).
 *   GET /first?what=…   one first call of a kind (none, ours, ours-apple, raw, chain-test, chain-apple); each isolate
 *                       gets one.
 *   GET /loop?op=…&n=…  n calls of ours-warm, ours-cold or raw, for the warm and cold ratios.
 */
import { clearChainCache, verifyCertificateChain } from "../src/apple/chain";
import { AppleVerificationError } from "../src/apple/errors";
import { createTrustStore, defaultTrustStore } from "../src/apple/roots";
import { verifyAppleTransaction } from "../src/apple/signed-data";
import { REAL_APPLE_X5C } from "../test/fixtures/apple/real-chain.ts";

interface Env {
	/** A signed transaction from the bench PKI, and that PKI's root (standard base64 DER). */
	JWS: string;
	/** A transaction with Apple's real chain in its header and a signature that cannot verify (see bench/run.ts). */
	APPLE_JWS: string;
	ROOT: string;
	BUNDLE_ID: string;
	APP_APPLE_ID: string;
}

const ES256 = { name: "ECDSA", hash: "SHA-256" } as const;

export default {
	async fetch(request: Request, env: Env): Promise<Response> {
		const url = new URL(request.url);
		try {
			if (url.pathname === "/first") {
				await first(env, url.searchParams.get("what") ?? "ours");
				return new Response("ok");
			}
			if (url.pathname === "/loop") {
				const op = (await operations(env))[url.searchParams.get("op") ?? ""];
				if (!op) throw new Error(`unknown operation ${url.searchParams.get("op")}`);
				const n = Number(url.searchParams.get("n") ?? 100);
				for (let i = 0; i < n; i++) await op();
				return new Response("ok");
			}
			return new Response("not found", { status: 404 });
		} catch (error) {
			return new Response(String(error instanceof Error ? (error.stack ?? error.message) : error), { status: 500 });
		}
	},
};

function options(env: Env, roots = createTrustStore([env.ROOT])) {
	return { roots, app: { bundleId: env.BUNDLE_ID, appAppleId: Number(env.APP_APPLE_ID), allowLocalTesting: false }, acceptSandbox: false };
}

/** What a raw verify needs: the leaf's certificate, the signature and the signing input. */
function rawParts(env: Env) {
	const dot = env.JWS.lastIndexOf(".");
	const signingInput = new TextEncoder().encode(env.JWS.slice(0, dot));
	const signature = fromBase64Url(env.JWS.slice(dot + 1));
	const header = JSON.parse(new TextDecoder().decode(fromBase64Url(env.JWS.slice(0, env.JWS.indexOf("."))))) as { x5c: string[] };
	return { signingInput, signature, leafDer: fromBase64(header.x5c[0]!) };
}

/** The first verification in this isolate, of one kind; each isolate answers this once. */
async function first(env: Env, what: string): Promise<void> {
	switch (what) {
		case "none":
			// The baseline: what a first request to a new isolate costs before any verification.
			return;
		case "ours": {
			// What a fresh isolate pays for its first App Store verification: the trust store, then the JWS.
			const result = await verifyAppleTransaction(env.JWS, options(env));
			if (!result.payload.transactionId) throw new Error("no transaction");
			return;
		}
		case "ours-apple": {
			// Production's first call: Apple's real chain with the default store (Apple's intermediate preverified,
			// src/apple/roots.ts). Only Apple can sign with that leaf, so the signature fails, last, as it must.
			try {
				await verifyAppleTransaction(env.APPLE_JWS, { roots: defaultTrustStore(), app: options(env).app, acceptSandbox: false });
			} catch (error) {
				if (error instanceof AppleVerificationError && error.code === "invalid_signature") return;
				throw error;
			}
			throw new Error("a signature nobody made was accepted");
		}
		case "raw": {
			// The floor for any first verification: import the leaf's key (from its certificate's SPKI, found here
			// without our parser) and verify one ES256 signature.
			const { signingInput, signature, leafDer } = rawParts(env);
			const key = await crypto.subtle.importKey("spki", findSpki(leafDer), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
			if (!(await crypto.subtle.verify(ES256, key, signature, signingInput))) throw new Error("raw verify failed");
			return;
		}
		case "chain-test": {
			// The chain half alone, on the bench PKI's chain: nothing known about it in advance.
			const header = JSON.parse(new TextDecoder().decode(fromBase64Url(env.JWS.slice(0, env.JWS.indexOf("."))))) as { x5c: string[] };
			await verifyCertificateChain(header.x5c, createTrustStore([env.ROOT]), Date.now());
			return;
		}
		case "chain-apple":
			// The chain half alone, on Apple's real chain with the default store: what production's first call does
			// (Apple's intermediate is preverified; see src/apple/roots.ts).
			await verifyCertificateChain(REAL_APPLE_X5C, defaultTrustStore(), Date.UTC(2026, 0, 1));
			return;
		default:
			throw new Error(`unknown first-call case ${what}`);
	}
}

/** The operations /loop repeats: ours with the chain verified before, ours with every cache cleared, one raw verify. */
async function operations(env: Env): Promise<Record<string, () => Promise<unknown>>> {
	const { signingInput, signature, leafDer } = rawParts(env);
	const key = await crypto.subtle.importKey("spki", findSpki(leafDer), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
	const opts = options(env);
	return {
		raw: () => crypto.subtle.verify(ES256, key, signature, signingInput),
		"ours-warm": () => verifyAppleTransaction(env.JWS, opts),
		"ours-cold": () => {
			clearChainCache();
			return verifyAppleTransaction(env.JWS, opts);
		},
	};
}

/** The SubjectPublicKeyInfo of a certificate, by walking the DER with a dozen lines rather than our parser. */
function findSpki(der: Uint8Array): Uint8Array<ArrayBuffer> {
	const header = (at: number) => {
		const lengthByte = der[at + 1]!;
		if (lengthByte < 0x80) return { content: at + 2, end: at + 2 + lengthByte };
		const count = lengthByte & 0x7f;
		let length = 0;
		for (let i = 0; i < count; i++) length = length * 256 + der[at + 2 + i]!;
		return { content: at + 2 + count, end: at + 2 + count + length };
	};
	const tbs = header(header(0).content);
	let at = tbs.content;
	if (der[at] === 0xa0) at = header(at).end; // version
	for (let field = 0; field < 5; field++) at = header(at).end; // serial, signature, issuer, validity, subject
	return der.slice(at, header(at).end) as Uint8Array<ArrayBuffer>;
}

/** Native where the runtime has Uint8Array.fromBase64 (workerd does), so the floor is not a slow JS loop. */
const nativeFromBase64 = (Uint8Array as unknown as { fromBase64?: (text: string, options?: { alphabet: string }) => Uint8Array<ArrayBuffer> }).fromBase64;

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
	if (nativeFromBase64) return nativeFromBase64(text);
	const binary = atob(text);
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
	if (nativeFromBase64) return nativeFromBase64(text, { alphabet: "base64url" });
	const base64 = text.replaceAll("-", "+").replaceAll("_", "/");
	return fromBase64(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
}
