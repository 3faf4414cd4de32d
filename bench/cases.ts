/**
 * The in-process Node cases of `npm run bench`, bundled by bench/run.ts (src/ imports are extensionless, which Node
 * will not resolve). One signed transaction from the bench PKI (bench/pki.ts), which every verifier trusts, verified
 * several ways; each ratio comes from its two cases timed in alternating rounds.
 */
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { Environment, SignedDataVerifier } from "@apple/app-store-server-library";
import { clearChainCache } from "../src/apple/chain";
import { createTrustStore } from "../src/apple/roots";
import { verifyAppleTransaction } from "../src/apple/signed-data";
import { signJws } from "../test/support/pki.ts";
import { startOcspPki, type OcspPki } from "./pki.ts";
import { median } from "./stats.ts";

export interface Measurement {
	iterations: number;
	/** CPU time of this process per operation (all threads: WebCrypto's thread pool included), median round. */
	usPerOp: number;
	/** Elapsed time per operation, median round. */
	wallUsPerOp: number;
}

export interface Paired {
	a: Measurement;
	b: Measurement;
	/** Median of the per-round ratios a ÷ b, in CPU time. */
	ratio: number;
	ratios: number[];
	/** The same in elapsed time. */
	wallRatio: number;
	wallRatios: number[];
}

export const APP = { bundleId: "com.example.iapedge", appAppleId: 1234567890, allowLocalTesting: false };

/** A transaction as the App Store signs it (JWSTransactionDecodedPayload), signed now. */
export function transactionPayload(transactionId = "2000000812345678") {
	const now = Date.now();
	return {
		transactionId,
		originalTransactionId: transactionId,
		webOrderLineItemId: "2000000099999999",
		bundleId: APP.bundleId,
		productId: "premium_monthly",
		subscriptionGroupIdentifier: "21000001",
		purchaseDate: now - 60_000,
		originalPurchaseDate: now - 60_000,
		expiresDate: now + 30 * 86_400_000,
		quantity: 1,
		type: "Auto-Renewable Subscription",
		inAppOwnershipType: "PURCHASED",
		signedDate: now,
		environment: "Production",
		transactionReason: "PURCHASE",
		storefront: "USA",
		storefrontId: "143441",
		price: 4990,
		currency: "USD",
		appTransactionId: "704355185342300000",
		appAppleId: APP.appAppleId,
	};
}

export interface Fixture {
	pki: OcspPki;
	jws: string;
}

export async function createFixture(): Promise<Fixture> {
	const pki = await startOcspPki();
	const jws = await signJws(transactionPayload(), pki.leaf.keyPair.privateKey, pki.x5c);
	return { pki, jws };
}

/**
 * Two operations measured in alternating rounds (which goes first alternates too), so a burst of load on a shared
 * machine hits both alike; the ratio is the median of the per-round ratios, not a quotient of figures taken
 * seconds apart. Each round is timed in CPU time (process.cpuUsage: what the work costs, whoever else wants the
 * cores) and in elapsed time.
 */
export async function measurePaired(a: () => unknown, b: () => unknown, seconds: number, rounds = 15): Promise<Paired> {
	const roundMs = (seconds * 1000) / (2 * rounds);
	const warmUntil = performance.now() + Math.min(500, seconds * 100);
	while (performance.now() < warmUntil) {
		await a();
		await b();
	}
	const timeRound = async (op: () => unknown) => {
		let count = 0;
		const cpu = process.cpuUsage();
		const start = performance.now();
		let elapsed = 0;
		while (elapsed < roundMs) {
			for (let i = 0; i < 8; i++) await op();
			count += 8;
			elapsed = performance.now() - start;
		}
		const used = process.cpuUsage(cpu);
		return { cpuUs: (used.user + used.system) / count, wallUs: (elapsed * 1000) / count, count };
	};
	const cpuA: number[] = [];
	const cpuB: number[] = [];
	const wallA: number[] = [];
	const wallB: number[] = [];
	let iterationsA = 0;
	let iterationsB = 0;
	for (let round = 0; round < rounds; round++) {
		const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
		const r1 = await timeRound(first);
		const r2 = await timeRound(second);
		const [ra, rb] = round % 2 === 0 ? [r1, r2] : [r2, r1];
		cpuA.push(ra.cpuUs);
		cpuB.push(rb.cpuUs);
		wallA.push(ra.wallUs);
		wallB.push(rb.wallUs);
		iterationsA += ra.count;
		iterationsB += rb.count;
	}
	const ratios = cpuA.map((value, i) => value / cpuB[i]!);
	const wallRatios = wallA.map((value, i) => value / wallB[i]!);
	return {
		a: { iterations: iterationsA, usPerOp: median(cpuA), wallUsPerOp: median(wallA) },
		b: { iterations: iterationsB, usPerOp: median(cpuB), wallUsPerOp: median(wallB) },
		ratio: median(ratios),
		ratios,
		wallRatio: median(wallRatios),
		wallRatios,
	};
}

export interface NodeResults {
	/** Ours with the chain verified before (cached) ÷ one raw WebCrypto ES256 verify. */
	warmVsRaw: Paired;
	/** Apple's library with its chain cache engaged (online checks on, OCSP answered locally) ÷ ours warm. */
	appleCachedVsOursWarm: Paired;
	/** Apple's library verifying the chain every time (online checks off: no cache) ÷ ours with caches cleared. */
	appleColdVsOursCold: Paired;
	/** One WebCrypto ES256 verify ÷ one synchronous node:crypto verify: what Node's thread pool adds to WebCrypto. */
	webCryptoVsSyncVerify: Paired;
	ocspRequests: Record<string, number>;
}

export async function runNodeCases(fixture: Fixture, seconds: number): Promise<NodeResults> {
	const { pki, jws } = fixture;
	const roots = createTrustStore([pki.root.base64]);
	const options = { roots, app: APP, acceptSandbox: false };
	const rootDer = [Buffer.from(pki.root.der)];
	const appleUncached = new SignedDataVerifier(rootDer, false, Environment.PRODUCTION, APP.bundleId, APP.appAppleId);
	const appleCached = new SignedDataVerifier(rootDer, true, Environment.PRODUCTION, APP.bundleId, APP.appAppleId);

	// Every verifier must accept the transaction before its speed means anything; Apple's cached verifier must have
	// asked the responder once per certificate, and then never again.
	const expected = transactionPayload().transactionId;
	for (const result of [
		(await verifyAppleTransaction(jws, options)).payload.transactionId,
		(await appleUncached.verifyAndDecodeTransaction(jws)).transactionId,
		(await appleCached.verifyAndDecodeTransaction(jws)).transactionId,
	]) {
		if (result !== expected) throw new Error("a verifier did not return the signed transaction");
	}
	if (pki.requests.leaf !== 1 || pki.requests.intermediate !== 1) throw new Error(`Apple's verifier asked the OCSP responder ${JSON.stringify(pki.requests)}`);

	const dot = jws.lastIndexOf(".");
	const signingInput = new TextEncoder().encode(jws.slice(0, dot));
	const signature = Buffer.from(jws.slice(dot + 1), "base64url");
	const ES256 = { name: "ECDSA", hash: "SHA-256" };
	const spki = await crypto.subtle.exportKey("spki", pki.leaf.keyPair.publicKey);
	const leafKey = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
	const nodeKey = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
	if (!(await crypto.subtle.verify(ES256, leafKey, signature, signingInput))) throw new Error("raw verify failed");
	if (!nodeVerify("sha256", signingInput, { key: nodeKey, dsaEncoding: "ieee-p1363" }, signature)) throw new Error("node:crypto verify failed");

	const oursWarm = () => verifyAppleTransaction(jws, options);
	const oursCold = () => {
		clearChainCache();
		return verifyAppleTransaction(jws, options);
	};
	const raw = () => crypto.subtle.verify(ES256, leafKey, signature, signingInput);
	const sync = () => nodeVerify("sha256", signingInput, { key: nodeKey, dsaEncoding: "ieee-p1363" }, signature);

	const warmVsRaw = await measurePaired(oursWarm, raw, seconds * 2);
	const appleCachedVsOursWarm = await measurePaired(() => appleCached.verifyAndDecodeTransaction(jws), oursWarm, seconds * 2);
	const appleColdVsOursCold = await measurePaired(() => appleUncached.verifyAndDecodeTransaction(jws), oursCold, seconds * 2);
	const webCryptoVsSyncVerify = await measurePaired(raw, sync, seconds);
	if (pki.requests.leaf !== 1 || pki.requests.intermediate !== 1) throw new Error(`Apple's cached verifier went back to the OCSP responder: ${JSON.stringify(pki.requests)}`);
	return { warmVsRaw, appleCachedVsOursWarm, appleColdVsOursCold, webCryptoVsSyncVerify, ocspRequests: { ...pki.requests } };
}
