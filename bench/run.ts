/**
 * `npm run bench`: how fast our Apple verifier is against Apple's official library and against the floor of one
 * raw ES256 verify, and how big the built Worker is. One run, one runtime (this Node). Figures go to the console
 * and to bench/results.json.
 *
 * Targets: Apple's library ÷ ours with a cached chain ≥ 5; ours cached ÷ one raw verify ≤ 1.5.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const SECONDS_PER_CASE = Number(process.env.BENCH_SECONDS ?? 3);
const TARGETS = { appleOverCached: 5, cachedOverRaw: 1.5 };
const OUT = ".tmp/bench";

mkdirSync(OUT, { recursive: true });
await build({
	entryPoints: ["bench/cases.ts"],
	bundle: true,
	platform: "node",
	format: "esm",
	target: "node22",
	outfile: `${OUT}/cases.mjs`,
	// Apple's library is CommonJS with its own dependencies: Node loads it from node_modules as it is.
	external: ["@apple/app-store-server-library"],
	logLevel: "warning",
});
const { runCases } = (await import(join(process.cwd(), OUT, "cases.mjs"))) as typeof import("./cases.ts");

console.log(`bench: Node ${process.version}, ~${SECONDS_PER_CASE}s per case\n`);
const results = await runCases(SECONDS_PER_CASE);
const size = await measureSizes();

const ratios = {
	appleOverCached: results.appleOverCached,
	// Measured in alternating rounds (bench/cases.ts measurePaired): load on a shared machine hits both alike.
	cachedOverRaw: results.cachedOverRaw,
	coldOverCached: results.oursCold.usPerOp / results.oursCached.usPerOp,
};

const rows: [string, { opsPerSec: number; usPerOp: number }][] = [
	["(a) ours, cached chain", results.oursCached],
	["(b) ours, cold chain", results.oursCold],
	["(c) Apple SignedDataVerifier", results.appleLibrary],
	["(d) raw WebCrypto ES256 verify", results.rawVerify],
	["cache key: Map.get(x5c text)", results.cacheKey.stringLookup],
	["cache key: SHA-256(x5c)", results.cacheKey.sha256],
];
const pad = (text: string, width: number) => text.padEnd(width);
const num = (value: number, digits: number) => value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }).padStart(12);
console.log(`${pad("case", 32)}${"ops/s".padStart(12)}${"µs/op".padStart(12)}`);
for (const [name, m] of rows) console.log(`${pad(name, 32)}${num(m.opsPerSec, 0)}${num(m.usPerOp, 2)}`);
const verdict = (ok: boolean) => (ok ? "meets target" : "MISSES target");
console.log("");
console.log(`Apple ÷ ours cached  ${ratios.appleOverCached.toFixed(2)}×  (target ≥ ${TARGETS.appleOverCached}×: ${verdict(ratios.appleOverCached >= TARGETS.appleOverCached)})`);
console.log(`ours cached ÷ raw    ${ratios.cachedOverRaw.toFixed(2)}×  (target ≤ ${TARGETS.cachedOverRaw}×: ${verdict(ratios.cachedOverRaw <= TARGETS.cachedOverRaw)})`);
console.log(`ours cold ÷ cached   ${ratios.coldOverCached.toFixed(2)}×`);
console.log("");
if (size.worker) console.log(`worker bundle        ${kib(size.worker.bytes)} KiB, ${kib(size.worker.gzipBytes)} KiB gzipped (${size.worker.file})`);
else console.log(`worker bundle        unavailable: ${size.workerError}`);
console.log(`Apple verifier alone ${kib(size.appleVerifier.bytes)} KiB minified, ${kib(size.appleVerifier.gzipBytes)} KiB gzipped (src/apple signed-data, receipt, roots and what they import; zod excluded)`);

writeFileSync(
	"bench/results.json",
	`${JSON.stringify({ date: new Date().toISOString(), node: process.version, secondsPerCase: SECONDS_PER_CASE, ...results, ratios, targets: TARGETS, size }, null, 2)}\n`,
);
console.log("\nwrote bench/results.json");
if (!size.worker) process.exitCode = 1;

function kib(bytes: number): string {
	return (bytes / 1024).toFixed(1);
}

interface Sizes {
	worker?: { file: string; bytes: number; gzipBytes: number };
	workerError?: string;
	appleVerifier: { bytes: number; gzipBytes: number };
}

async function measureSizes(): Promise<Sizes> {
	// What src/apple adds to a Worker by itself, minified as wrangler would ship it; zod is shared with the rest.
	const apple = await build({
		stdin: { contents: 'export * from "./src/apple/signed-data"; export * from "./src/apple/receipt"; export * from "./src/apple/roots";', resolveDir: ".", loader: "ts" },
		bundle: true,
		minify: true,
		format: "esm",
		platform: "neutral",
		external: ["zod"],
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
