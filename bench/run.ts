/**
 * `npm run bench`: how fast our App Store verification is, against Apple's official library and against the floor
 * of one raw ES256 verify, in Node and inside workerd (where the Worker runs), warm, cold and on the first call in
 * a fresh process or isolate; then how big the built Worker is. Every ratio is the median of per-round ratios of
 * its two cases, measured in alternating rounds in this one run. What each figure means: bench/README.md.
 * Writes the `p1` figures of bench/results.json (keeping `load`, from `npm run bench:load`).
 *
 * Environment: BENCH_SECONDS (per paired Node case, default 3), BENCH_FIRST_CALLS (first-call rounds, default 15).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { REAL_APPLE_X5C } from "../test/fixtures/apple/real-chain.ts";
import { buildIsolateWorker, ISOLATE_WORKER_BUNDLE, startIsolates } from "./isolate.ts";
import { writeSection } from "./results.ts";
import { median, round, spread } from "./stats.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const FIRST_CALLS = Number(process.env.BENCH_FIRST_CALLS ?? 15);
/** First-call rounds per workerd process: each round uses four fresh isolates. */
const ROUNDS_PER_PROCESS = 5;
const OUT = ".tmp/bench";

/** The targets bench/README.md states, checked at the end. */
const TARGETS = {
	/** Ours warm ÷ one raw ES256 verify, in workerd: at most. */
	warmVsRaw: 1.5,
	/** Apple's library with its cache ÷ ours warm: at least. */
	appleCachedVsOursWarm: 1,
	/** Apple's first call (fresh Node process) ÷ ours (new isolate): at least, i.e. ours ≤ 0.5× Apple's. */
	appleFirstCallVsOursFirstCall: 2,
};

mkdirSync(OUT, { recursive: true });
const common = { bundle: true, format: "esm", target: "node22", logLevel: "warning" } as const;
await Promise.all([
	// Apple's library is CommonJS with its own dependencies: Node loads it from node_modules as it is.
	build({ ...common, entryPoints: ["bench/cases.ts"], platform: "node", outfile: `${OUT}/cases.mjs`, external: ["@apple/app-store-server-library"] }),
	build({ ...common, entryPoints: ["bench/ours.ts"], platform: "node", outfile: `${OUT}/ours.mjs` }),
	buildIsolateWorker(),
]);
const cases = (await import(resolve(OUT, "cases.mjs"))) as typeof import("./cases.ts");

console.log(`bench: Node ${process.version}, workerd via Miniflare; ~${SECONDS}s per paired Node case, ${FIRST_CALLS} first-call rounds\n`);
const fixture = await cases.createFixture();
const appleJws = realChainJws();
try {
	const node = await cases.runNodeCases(fixture, SECONDS);
	const isolate = await runIsolateCases(fixture.jws, fixture.pki.root.base64);
	const first = await runFirstCalls(fixture.jws, fixture.pki.root.base64);
	const size = await measureSizes();
	report(node, isolate, first, size);
} finally {
	await fixture.pki.close();
}

/** µs per operation in one isolate, ops measured in alternating rounds; per-round ratios a ÷ b. */
interface IsolatePaired {
	usA: number[];
	usB: number[];
	ratios: number[];
}

/**
 * Warm and cold inside workerd: one isolate runs `n` operations per request (/loop), and each request is timed by
 * the workerd process's CPU time (bench/isolate.ts). A request of zero operations, timed in the same round, is the
 * per-request overhead taken off both.
 */
async function runIsolateCases(jws: string, root: string) {
	const script = readFileSync(ISOLATE_WORKER_BUNDLE, "utf8");
	const isolates = await startIsolates(1, script, isolateBindings(jws, root));
	try {
		const paired = async (a: string, nA: number, b: string, nB: number, rounds: number): Promise<IsolatePaired> => {
			const loop = async (op: string, n: number) => (await isolates.time(1, `/loop?op=${op}&n=${n}`)).ms;
			for (let i = 0; i < 3; i++) await Promise.all([loop(a, nA), loop(b, nB)]);
			const result: IsolatePaired = { usA: [], usB: [], ratios: [] };
			for (let round = 0; round < rounds; round++) {
				const overhead = await loop("raw", 0);
				const [first, second] = round % 2 === 0 ? [[a, nA], [b, nB]] as const : [[b, nB], [a, nA]] as const;
				const t1 = await loop(first[0], first[1]);
				const t2 = await loop(second[0], second[1]);
				const [ta, tb] = round % 2 === 0 ? [t1, t2] : [t2, t1];
				const usA = ((ta - overhead) * 1000) / nA;
				const usB = ((tb - overhead) * 1000) / nB;
				result.usA.push(usA);
				result.usB.push(usB);
				result.ratios.push(usA / usB);
			}
			return result;
		};
		const warm = await paired("ours-warm", 800, "raw", 800, 15);
		const cold = await paired("ours-cold", 40, "raw", 800, 9);
		return { warm, cold, clock: isolates.clock };
	} finally {
		await isolates.dispose();
	}
}

function isolateBindings(jws: string, root: string): Record<string, string> {
	return { JWS: jws, APPLE_JWS: appleJws, ROOT: root, BUNDLE_ID: cases.APP.bundleId, APP_APPLE_ID: String(cases.APP.appAppleId) };
}

/**
 * A transaction whose header carries Apple's real chain (leaf valid 2025-09-19 to 2027-10-13, signed "on"
 * 2026-01-01) and a random signature: what production's first call checks, except that no one but Apple can sign
 * with that leaf, so both verifiers run every check and fail at the last, the signature.
 */
function realChainJws(): string {
	const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
	const signedDate = Date.UTC(2026, 0, 1);
	const payload = { ...cases.transactionPayload(), purchaseDate: signedDate - 60_000, originalPurchaseDate: signedDate - 60_000, expiresDate: signedDate + 30 * 86_400_000, signedDate };
	return `${part({ alg: "ES256", x5c: REAL_APPLE_X5C })}.${part(payload)}.${Buffer.from(crypto.getRandomValues(new Uint8Array(64))).toString("base64url")}`;
}

interface FirstCalls {
	clock: "cpu" | "wall";
	appleNode: number[];
	oursNode: number[];
	oursIsolate: number[];
	rawIsolate: number[];
	chainTestIsolate: number[];
	chainAppleIsolate: number[];
	/** Per round: Apple (fresh Node process) ÷ ours (new isolate), and Apple ÷ ours, both in fresh Node processes. */
	appleVsOursIsolate: number[];
	appleVsOursNode: number[];
	/** Apple's library on the real-chain JWS (fresh Node process), and per round ÷ ours on it (new isolate). */
	oursRealIsolate: number[];
	appleRealNode: number[];
	appleRealVsOursReal: number[];
	/** The same Node figures in elapsed time. */
	wall: { appleNode: number[]; oursNode: number[] };
}

/**
 * First calls, in rounds: each round times Apple's library in a fresh Node process, ours in a fresh Node process
 * and ours in a new isolate (in a rotating order), plus new isolates for the floor (one raw ES256 verify with its
 * key import) and the chain half alone, on the bench chain and on Apple's real one. An isolate's figure is the CPU
 * its first request cost minus that of a first request doing nothing to another new isolate (the median of those
 * in the same workerd process).
 */
async function runFirstCalls(jws: string, root: string): Promise<FirstCalls> {
	const dataFile = join(OUT, "first-call.json");
	writeFileSync(dataFile, JSON.stringify({ jws, appleJws, root, bundleId: cases.APP.bundleId, appAppleId: cases.APP.appAppleId }));
	const script = readFileSync(ISOLATE_WORKER_BUNDLE, "utf8");
	const result: FirstCalls = {
		clock: "cpu",
		appleNode: [],
		oursNode: [],
		oursIsolate: [],
		rawIsolate: [],
		chainTestIsolate: [],
		chainAppleIsolate: [],
		appleVsOursIsolate: [],
		appleVsOursNode: [],
		oursRealIsolate: [],
		appleRealNode: [],
		appleRealVsOursReal: [],
		wall: { appleNode: [], oursNode: [] },
	};
	const inProcess = (which: "apple" | "ours" | "apple-real") => {
		const child = spawnSync(process.execPath, ["bench/first-call.ts", which, dataFile, resolve(OUT, "ours.mjs")], { encoding: "utf8" });
		if (child.status !== 0) throw new Error(`bench/first-call.ts ${which} failed: ${child.stderr}`);
		return JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { ms: number; wallMs: number };
	};
	const KINDS = ["none", "ours", "ours-apple", "raw", "chain-test", "chain-apple"] as const;
	for (let done = 0; done < FIRST_CALLS; done += ROUNDS_PER_PROCESS) {
		const rounds = Math.min(ROUNDS_PER_PROCESS, FIRST_CALLS - done);
		const isolates = await startIsolates(rounds * KINDS.length, script, isolateBindings(jws, root));
		if (isolates.clock === "wall") result.clock = "wall";
		try {
			const raw: Record<(typeof KINDS)[number], number[]> = { none: [], ours: [], "ours-apple": [], raw: [], "chain-test": [], "chain-apple": [] };
			type NodeTime = { ms: number; wallMs: number };
			const node: { apple: NodeTime; ours: NodeTime; appleReal: NodeTime }[] = [];
			for (let r = 0; r < rounds; r++) {
				const firstIn = async (kind: (typeof KINDS)[number]) => raw[kind].push((await isolates.time(r * KINDS.length + KINDS.indexOf(kind) + 1, `/first?what=${kind}`)).ms);
				const measured: Partial<{ apple: NodeTime; ours: NodeTime; appleReal: NodeTime }> = {};
				const steps = [
					async () => (measured.apple = inProcess("apple")),
					async () => (measured.ours = inProcess("ours")),
					async () => {
						await firstIn("none");
						await firstIn("ours");
					},
					async () => (measured.appleReal = inProcess("apple-real")),
					async () => firstIn("ours-apple"),
				];
				const turn = (done + r) % steps.length;
				for (const step of [...steps.slice(turn), ...steps.slice(0, turn)]) await step();
				node.push(measured as { apple: NodeTime; ours: NodeTime; appleReal: NodeTime });
				for (const kind of ["raw", "chain-test", "chain-apple"] as const) await firstIn(kind);
			}
			const baseline = median(raw.none);
			const net = (values: number[]) => values.map((value) => value - baseline);
			raw.ours.forEach((value, r) => {
				const ours = value - baseline;
				const round = node[r]!;
				result.oursIsolate.push(ours);
				result.appleNode.push(round.apple.ms);
				result.oursNode.push(round.ours.ms);
				result.appleRealNode.push(round.appleReal.ms);
				result.wall.appleNode.push(round.apple.wallMs);
				result.wall.oursNode.push(round.ours.wallMs);
				result.appleVsOursIsolate.push(round.apple.ms / ours);
				result.appleVsOursNode.push(round.apple.ms / round.ours.ms);
				result.oursRealIsolate.push(raw["ours-apple"][r]! - baseline);
				result.appleRealVsOursReal.push(round.appleReal.ms / (raw["ours-apple"][r]! - baseline));
			});
			result.rawIsolate.push(...net(raw.raw));
			result.chainTestIsolate.push(...net(raw["chain-test"]));
			result.chainAppleIsolate.push(...net(raw["chain-apple"]));
		} finally {
			await isolates.dispose();
		}
	}
	return result;
}

interface Sizes {
	worker?: { file: string; bytes: number; gzipBytes: number };
	workerError?: string;
	appleVerifier: { bytes: number; gzipBytes: number };
}

async function measureSizes(): Promise<Sizes> {
	// What src/apple adds to a Worker by itself, minified as wrangler would ship it; zod and jose are shared with the rest.
	const apple = await build({
		stdin: { contents: 'export * from "./src/apple/signed-data"; export * from "./src/apple/receipt"; export * from "./src/apple/roots";', resolveDir: ".", loader: "ts" },
		bundle: true,
		minify: true,
		format: "esm",
		platform: "neutral",
		external: ["zod", "jose"],
		write: false,
	});
	const appleBytes = apple.outputFiles[0]!.contents;
	const sizes: Sizes = { appleVerifier: { bytes: appleBytes.length, gzipBytes: gzipSync(appleBytes).length } };

	const outdir = ".tmp/bench-build";
	rmSync(outdir, { recursive: true, force: true });
	const wrangler = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir], { encoding: "utf8", env: { ...process.env, CI: "true" } });
	if (wrangler.status !== 0) {
		sizes.workerError = `wrangler deploy --dry-run failed (${(wrangler.stderr || wrangler.stdout || String(wrangler.error)).trim().split("\n").slice(-3).join(" ")}); retry once src/ builds`;
		return sizes;
	}
	const main = readdirSync(outdir)
		.filter((file) => file.endsWith(".js"))
		.map((file) => ({ file, bytes: statSync(join(outdir, file)).size }))
		.sort((a, b) => b.bytes - a.bytes)[0];
	if (!main) {
		sizes.workerError = `no .js in ${outdir}`;
		return sizes;
	}
	sizes.worker = { file: join(outdir, main.file), bytes: main.bytes, gzipBytes: gzipSync(readFileSync(join(outdir, main.file))).length };
	return sizes;
}

function report(node: Awaited<ReturnType<typeof cases.runNodeCases>>, isolate: Awaited<ReturnType<typeof runIsolateCases>>, first: FirstCalls, size: Sizes): void {
	const figures = {
		warm_vs_raw: median(isolate.warm.ratios),
		apple_cached_vs_ours_warm: node.appleCachedVsOursWarm.ratio,
		apple_first_call_vs_ours_first_call: median(first.appleVsOursIsolate),
		apple_cold_vs_ours_cold: node.appleColdVsOursCold.ratio,
		cold_vs_raw: median(isolate.cold.ratios),
		"node.warm_vs_raw": node.warmVsRaw.ratio,
		"node.apple_first_call_vs_ours_first_call": median(first.appleVsOursNode),
		"node.webcrypto_vs_sync_verify": node.webCryptoVsSyncVerify.ratio,
		"real_chain.apple_first_call_vs_ours_first_call": median(first.appleRealVsOursReal),
	};
	const spreads: Record<keyof typeof figures, number[]> = {
		warm_vs_raw: isolate.warm.ratios,
		apple_cached_vs_ours_warm: node.appleCachedVsOursWarm.ratios,
		apple_first_call_vs_ours_first_call: first.appleVsOursIsolate,
		apple_cold_vs_ours_cold: node.appleColdVsOursCold.ratios,
		cold_vs_raw: isolate.cold.ratios,
		"node.warm_vs_raw": node.warmVsRaw.ratios,
		"node.apple_first_call_vs_ours_first_call": first.appleVsOursNode,
		"node.webcrypto_vs_sync_verify": node.webCryptoVsSyncVerify.ratios,
		"real_chain.apple_first_call_vs_ours_first_call": first.appleRealVsOursReal,
	};
	const wall = {
		apple_cached_vs_ours_warm: node.appleCachedVsOursWarm.wallRatios,
		apple_cold_vs_ours_cold: node.appleColdVsOursCold.wallRatios,
		"node.warm_vs_raw": node.warmVsRaw.wallRatios,
		"node.webcrypto_vs_sync_verify": node.webCryptoVsSyncVerify.wallRatios,
		"node.apple_first_call_vs_ours_first_call": first.wall.appleNode.map((apple, i) => apple / first.wall.oursNode[i]!),
	};
	const us = (cpu: number, elapsed?: number) => `${cpu.toFixed(1).padStart(9)}${elapsed === undefined ? "" : elapsed.toFixed(1).padStart(12)}`;
	const ms = (values: number[]) => `${median(values).toFixed(2).padStart(7)} ms  (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}, n=${values.length})`;
	const ratio = (values: number[]) => {
		const s = spread(values);
		return `${s.median.toFixed(2)}×  (rounds ${s.min.toFixed(2)}–${s.max.toFixed(2)}, quartiles ${s.q1.toFixed(2)}–${s.q3.toFixed(2)}, n=${s.n})`;
	};
	const verdict = (ok: boolean) => (ok ? "meets target" : "MISSES target");
	const isolateClock = isolate.clock === "cpu" ? "workerd CPU time" : "wall time (no /proc here)";

	console.log(`Node, one process: µs per verification, median round        ${"CPU".padStart(9)}${"elapsed".padStart(12)}`);
	console.log(`  ours, chain verified before (warm)                          ${us(node.warmVsRaw.a.usPerOp, node.warmVsRaw.a.wallUsPerOp)}`);
	console.log(`  raw WebCrypto ES256 verify                                  ${us(node.warmVsRaw.b.usPerOp, node.warmVsRaw.b.wallUsPerOp)}`);
	console.log(`  raw node:crypto ES256 verify (synchronous)                  ${us(node.webCryptoVsSyncVerify.b.usPerOp, node.webCryptoVsSyncVerify.b.wallUsPerOp)}`);
	console.log(`  Apple's library, online checks on (its chain cache)         ${us(node.appleCachedVsOursWarm.a.usPerOp, node.appleCachedVsOursWarm.a.wallUsPerOp)}`);
	console.log(`  ours, caches cleared (cold)                                 ${us(node.appleColdVsOursCold.b.usPerOp, node.appleColdVsOursCold.b.wallUsPerOp)}`);
	console.log(`  Apple's library, online checks off (no cache)               ${us(node.appleColdVsOursCold.a.usPerOp, node.appleColdVsOursCold.a.wallUsPerOp)}`);
	console.log(`workerd, one isolate: µs per verification (${isolateClock}), median round`);
	console.log(`  ours warm                                                   ${us(median(isolate.warm.usA))}`);
	console.log(`  raw WebCrypto ES256 verify                                  ${us(median(isolate.warm.usB))}`);
	console.log(`  ours cold                                                   ${us(median(isolate.cold.usA))}`);
	console.log(`first call (CPU time; isolates: ${first.clock === "cpu" ? "workerd CPU" : "wall time"}), median and range`);
	console.log(`  Apple's library, fresh Node process                       ${ms(first.appleNode)}`);
	console.log(`  ours, fresh Node process                                  ${ms(first.oursNode)}`);
	console.log(`  ours, new workerd isolate                                 ${ms(first.oursIsolate)}`);
	console.log(`  raw: leaf key import + one ES256 verify, new isolate      ${ms(first.rawIsolate)}`);
	console.log(`  chain only, bench chain, new isolate                      ${ms(first.chainTestIsolate)}`);
	console.log(`  chain only, Apple's real chain, new isolate               ${ms(first.chainAppleIsolate)}`);
	console.log(`  Apple's real chain (signature fails last): Apple, fresh Node ${ms(first.appleRealNode)}`);
	console.log(`  Apple's real chain (signature fails last): ours, new isolate ${ms(first.oursRealIsolate)}`);
	console.log("");
	const line = (name: keyof typeof figures, note: string) => console.log(`p1.${name.padEnd(42)} ${ratio(spreads[name])}  ${note}`);
	line("warm_vs_raw", `(workerd; target ≤ ${TARGETS.warmVsRaw}: ${verdict(figures.warm_vs_raw <= TARGETS.warmVsRaw)})`);
	line("apple_cached_vs_ours_warm", `(Node; Apple ÷ ours; target ≥ ${TARGETS.appleCachedVsOursWarm}: ${verdict(figures.apple_cached_vs_ours_warm >= TARGETS.appleCachedVsOursWarm)})`);
	line("apple_first_call_vs_ours_first_call", `(Apple in Node ÷ ours in workerd; target ≥ ${TARGETS.appleFirstCallVsOursFirstCall}: ${verdict(figures.apple_first_call_vs_ours_first_call >= TARGETS.appleFirstCallVsOursFirstCall)})`);
	line("apple_cold_vs_ours_cold", "(Node; Apple ÷ ours, both verifying the chain every time)");
	line("cold_vs_raw", "(workerd)");
	line("real_chain.apple_first_call_vs_ours_first_call", "(Apple's real chain, signature failing last: Apple in Node ÷ ours in workerd)");
	line("node.warm_vs_raw", "");
	line("node.apple_first_call_vs_ours_first_call", "");
	line("node.webcrypto_vs_sync_verify", "");
	console.log("in elapsed time instead of CPU time:");
	for (const [name, values] of Object.entries(wall)) console.log(`p1.${name.padEnd(42)} ${ratio(values)}`);
	console.log("");
	if (size.worker) console.log(`worker bundle        ${kib(size.worker.bytes)} KiB, ${kib(size.worker.gzipBytes)} KiB gzipped (${size.worker.file})`);
	else console.log(`worker bundle        unavailable: ${size.workerError}`);
	console.log(`Apple verifier alone ${kib(size.appleVerifier.bytes)} KiB minified, ${kib(size.appleVerifier.gzipBytes)} KiB gzipped (src/apple signed-data, receipt, roots and what they import; zod and jose excluded)`);

	const rounded = Object.fromEntries(Object.entries(figures).map(([name, value]) => [name, round(value)]));
	writeSection("p1", rounded, {
		date: new Date().toISOString(),
		node: process.version,
		secondsPerCase: SECONDS,
		clock: { node: "cpu (process.cpuUsage); wall in `wall`", workerd: isolate.clock, firstCall: first.clock },
		targets: TARGETS,
		spread: Object.fromEntries(Object.entries(spreads).map(([name, values]) => [name, spread(values)])),
		wall: Object.fromEntries(Object.entries(wall).map(([name, values]) => [name, spread(values)])),
		microseconds: {
			node: {
				oursWarm: node.warmVsRaw.a.usPerOp,
				rawWebCrypto: node.warmVsRaw.b.usPerOp,
				rawNodeCrypto: node.webCryptoVsSyncVerify.b.usPerOp,
				appleCached: node.appleCachedVsOursWarm.a.usPerOp,
				oursCold: node.appleColdVsOursCold.b.usPerOp,
				appleUncached: node.appleColdVsOursCold.a.usPerOp,
			},
			workerd: { oursWarm: median(isolate.warm.usA), raw: median(isolate.warm.usB), oursCold: median(isolate.cold.usA) },
		},
		firstCallMs: Object.fromEntries(
			(["appleNode", "oursNode", "oursIsolate", "rawIsolate", "chainTestIsolate", "chainAppleIsolate", "oursRealIsolate", "appleRealNode"] as const).map((name) => [name, spread(first[name])]),
		),
		ocspRequests: node.ocspRequests,
		size,
	});
	console.log("\nwrote bench/results.json");
	if (!size.worker) process.exitCode = 1;
}

function kib(bytes: number): string {
	return (bytes / 1024).toFixed(1);
}
