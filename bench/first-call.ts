/**
 * One first verification in a fresh Node process, then exit: `node bench/first-call.ts <apple|ours|apple-real>
 * <data.json> [ours.mjs]`. bench/run.ts starts one process per measurement, alternating Apple's library and ours.
 * `apple-real` is Apple's library on a JWS carrying Apple's real chain (test/fixtures/apple/real-chain.ts), whose
 * signature cannot be valid (only Apple holds the leaf's key): every check runs, the last one (the signature)
 * fails, and that failure is required.
 *
 * Both sides load their code first (not timed: a server does that at start-up), then time the same thing: build the
 * verifier from the trusted root and verify one signed transaction. Apple's library runs with online checks off,
 * its cheapest first call (with them on, it would also wait for two OCSP answers). Prints {"ms": …, "wallMs": …}
 * on stdout: ms is the process's CPU time (all threads, as process.cpuUsage counts it), wallMs the elapsed time.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [which, dataFile, oursBundle] = process.argv.slice(2);
const data = JSON.parse(readFileSync(dataFile!, "utf8")) as { jws: string; appleJws: string; root: string; bundleId: string; appAppleId: number };

let firstCall: () => Promise<unknown>;
if (which === "apple") {
	const { Environment, SignedDataVerifier } = await import("@apple/app-store-server-library");
	firstCall = async () => {
		const verifier = new SignedDataVerifier([Buffer.from(data.root, "base64")], false, Environment.PRODUCTION, data.bundleId, data.appAppleId);
		const transaction = await verifier.verifyAndDecodeTransaction(data.jws);
		if (!transaction.transactionId) throw new Error("Apple's verifier returned no transaction");
	};
} else if (which === "apple-real") {
	const { Environment, SignedDataVerifier } = await import("@apple/app-store-server-library");
	const { APPLE_ROOT_CA_G3 } = await import("../test/fixtures/apple/real-chain.ts");
	firstCall = async () => {
		const verifier = new SignedDataVerifier([Buffer.from(APPLE_ROOT_CA_G3, "base64")], false, Environment.PRODUCTION, data.bundleId, data.appAppleId);
		try {
			await verifier.verifyAndDecodeTransaction(data.appleJws);
		} catch (error) {
			// VERIFICATION_FAILURE (1), from jsonwebtoken's "invalid signature": the chain passed, the signature did not.
			const { status, cause } = error as { status?: number; cause?: { message?: string } };
			if (status === 1 && cause?.message === "invalid signature") return;
			throw error;
		}
		throw new Error("Apple's verifier accepted a signature nobody made");
	};
} else if (which === "ours") {
	const ours = (await import(pathToFileURL(oursBundle!).href)) as typeof import("./ours.ts");
	firstCall = async () => {
		const roots = ours.createTrustStore([data.root]);
		const verified = await ours.verifyAppleTransaction(data.jws, { roots, app: { bundleId: data.bundleId, appAppleId: data.appAppleId, allowLocalTesting: false }, acceptSandbox: false });
		if (!verified.payload.transactionId) throw new Error("our verifier returned no transaction");
	};
} else {
	throw new Error(`usage: node bench/first-call.ts <apple|ours|apple-real> <data.json> [ours.mjs]`);
}
const cpuStart = process.cpuUsage();
const start = performance.now();
await firstCall();
const wallMs = performance.now() - start;
const cpu = process.cpuUsage(cpuStart);
process.stdout.write(`${JSON.stringify({ which, ms: (cpu.user + cpu.system) / 1000, wallMs })}\n`);
