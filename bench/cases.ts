/**
 * The benchmark's cases, bundled by bench/run.ts (src/ imports are extensionless, which Node will not resolve).
 * One signed transaction, made with a fresh test PKI whose root every verifier trusts, verified four ways.
 */
import { Environment, SignedDataVerifier } from "@apple/app-store-server-library";
import { clearChainCache } from "../src/apple/chain";
import { createTrustStore } from "../src/apple/roots";
import { verifyAppleTransaction } from "../src/apple/signed-data";
import { createApplePki, signJws } from "../test/support/pki.ts";

export interface Measurement {
	iterations: number;
	opsPerSec: number;
	usPerOp: number;
}

export interface CaseResults {
	oursCached: Measurement;
	oursCold: Measurement;
	appleLibrary: Measurement;
	rawVerify: Measurement;
	/** Median of per-round ratios, (a) and (d) measured in alternating rounds. */
	cachedOverRaw: number;
	/** Median of per-round ratios, (c) and (a) measured in alternating rounds. */
	appleOverCached: number;
	cacheKey: { stringLookup: Measurement; sha256: Measurement };
}

const APP = { bundleId: "com.example.iapedge", appAppleId: 1234567890, allowLocalTesting: false };

/**
 * Runs `op` back to back for about `seconds` after a warm-up, in rounds; the median round is reported so one
 * garbage collection or scheduler hiccup does not decide the figure.
 */
async function measure(op: () => Promise<unknown> | unknown, seconds: number): Promise<Measurement> {
	const warmUntil = performance.now() + Math.min(500, seconds * 200);
	while (performance.now() < warmUntil) await op();
	const rounds: number[] = [];
	let iterations = 0;
	const roundMs = (seconds * 1000) / 7;
	for (let round = 0; round < 7; round++) {
		let count = 0;
		const start = performance.now();
		let elapsed = 0;
		while (elapsed < roundMs) {
			for (let i = 0; i < 16; i++) await op();
			count += 16;
			elapsed = performance.now() - start;
		}
		rounds.push((elapsed * 1000) / count);
		iterations += count;
	}
	const usPerOp = rounds.sort((a, b) => a - b)[3]!;
	return { iterations, opsPerSec: 1e6 / usPerOp, usPerOp };
}

/**
 * Two operations measured in alternating rounds, so a burst of load on a shared machine hits both alike; the
 * ratio is the median of the per-round ratios, not a quotient of figures taken seconds apart.
 */
async function measurePaired(
	a: () => Promise<unknown> | unknown,
	b: () => Promise<unknown> | unknown,
	seconds: number,
): Promise<{ a: Measurement; b: Measurement; ratio: number }> {
	const ROUNDS = 15;
	const roundMs = (seconds * 1000) / ROUNDS;
	const warmUntil = performance.now() + Math.min(500, seconds * 200);
	while (performance.now() < warmUntil) {
		await a();
		await b();
	}
	const timeRound = async (op: () => Promise<unknown> | unknown) => {
		let count = 0;
		const start = performance.now();
		let elapsed = 0;
		while (elapsed < roundMs) {
			for (let i = 0; i < 16; i++) await op();
			count += 16;
			elapsed = performance.now() - start;
		}
		return { usPerOp: (elapsed * 1000) / count, count };
	};
	const roundsA: number[] = [];
	const roundsB: number[] = [];
	const ratios: number[] = [];
	let iterationsA = 0;
	let iterationsB = 0;
	for (let round = 0; round < ROUNDS; round++) {
		// Alternate which goes first, so neither always follows the other's garbage.
		const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
		const r1 = await timeRound(first);
		const r2 = await timeRound(second);
		const [ra, rb] = round % 2 === 0 ? [r1, r2] : [r2, r1];
		roundsA.push(ra.usPerOp);
		roundsB.push(rb.usPerOp);
		ratios.push(ra.usPerOp / rb.usPerOp);
		iterationsA += ra.count;
		iterationsB += rb.count;
	}
	const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
	const m = (rounds: number[], iterations: number): Measurement => ({ iterations, usPerOp: median(rounds), opsPerSec: 1e6 / median(rounds) });
	return { a: m(roundsA, iterationsA), b: m(roundsB, iterationsB), ratio: median(ratios) };
}

export async function runCases(seconds: number): Promise<CaseResults> {
	const pki = await createApplePki();
	const roots = createTrustStore([pki.root.base64]);
	const payload = {
		transactionId: "2000000812345678",
		originalTransactionId: "2000000812345678",
		webOrderLineItemId: "2000000099999999",
		bundleId: APP.bundleId,
		productId: "premium_monthly",
		subscriptionGroupIdentifier: "21000001",
		purchaseDate: Date.now() - 60_000,
		originalPurchaseDate: Date.now() - 60_000,
		expiresDate: Date.now() + 30 * 86_400_000,
		quantity: 1,
		type: "Auto-Renewable Subscription",
		inAppOwnershipType: "PURCHASED",
		signedDate: Date.now(),
		environment: "Production",
		transactionReason: "PURCHASE",
		storefront: "USA",
		storefrontId: "143441",
		price: 4990,
		currency: "USD",
		appTransactionId: "704355185342300000",
	};
	const jws = await signJws(payload, pki.leaf.keyPair.privateKey, pki.x5c);
	const options = { roots, app: APP, acceptSandbox: false };
	const apple = new SignedDataVerifier([Buffer.from(pki.root.der)], false, Environment.PRODUCTION, APP.bundleId, APP.appAppleId);

	// Every verifier must accept the transaction before its speed means anything.
	const ours = await verifyAppleTransaction(jws, options);
	const theirs = await apple.verifyAndDecodeTransaction(jws);
	if (ours.payload.transactionId !== payload.transactionId || theirs.transactionId !== payload.transactionId) {
		throw new Error("a verifier did not return the signed transaction");
	}

	const dot = jws.lastIndexOf(".");
	const signingInput = new TextEncoder().encode(jws.slice(0, dot));
	const signature = Buffer.from(jws.slice(dot + 1), "base64url");
	const ES256 = { name: "ECDSA", hash: "SHA-256" };
	const leafKey = await crypto.subtle.importKey("spki", await crypto.subtle.exportKey("spki", pki.leaf.keyPair.publicKey), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
	if (!(await crypto.subtle.verify(ES256, leafKey, signature, signingInput))) throw new Error("raw verify failed");

	const cachedVsRaw = await measurePaired(
		() => verifyAppleTransaction(jws, options),
		() => crypto.subtle.verify(ES256, leafKey, signature, signingInput),
		seconds * 2,
	);
	const oursCached = cachedVsRaw.a;
	const rawVerify = cachedVsRaw.b;
	const oursCold = await measure(() => {
		clearChainCache();
		return verifyAppleTransaction(jws, options);
	}, seconds);
	const appleVsCached = await measurePaired(
		() => apple.verifyAndDecodeTransaction(jws),
		() => verifyAppleTransaction(jws, options),
		seconds * 2,
	);
	const appleLibrary = appleVsCached.a;

	// The chain cache's key, both ways: the x5c text as a Map key (copied each time, as JSON.parse would hand us a
	// fresh string) against a SHA-256 of the entries.
	const map = new Map([[pki.x5c[0], 1]]);
	const fresh = () => (pki.x5c[0] + " ").slice(0, -1);
	const stringLookup = await measure(() => map.get(fresh()), Math.min(1, seconds / 2));
	const bytes = new TextEncoder().encode(pki.x5c[0] + pki.x5c[1]);
	const sha256 = await measure(() => crypto.subtle.digest("SHA-256", bytes), Math.min(1, seconds / 2));

	return { oursCached, oursCold, appleLibrary, rawVerify, cachedOverRaw: cachedVsRaw.ratio, appleOverCached: appleVsCached.ratio, cacheKey: { stringLookup, sha256 } };
}
