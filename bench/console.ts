/**
 * `npm run bench:console`: the console's and the KPIs' reads with 100,000 purchases, against the same reads with
 * 1,000, in workerd (Miniflare) with local D1. Both databases get the migrations and are seeded alike (a year of an
 * app: 100,000 or 1,000 purchases over 20,000 or 200 users, and its daily counts); each case then runs against one
 * and the other in alternating rounds, and the figure is the median per-round ratio of large ÷ small. A ratio near
 * 1 means the query reads through an index whatever the table's size (test/kpis.test.ts checks every plan with
 * EXPLAIN QUERY PLAN). Elapsed time seen from Node; writes the `console` figures of bench/results.json.
 *
 * Environment: BENCH_CONSOLE_ROUNDS (default 15), BENCH_CONSOLE_REPEAT (requests per case per round, default 10).
 */
import { readD1Migrations } from "@cloudflare/vitest-plugin";
import { build } from "esbuild";
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from "miniflare";
import { writeSection } from "./results.ts";
import { median, round, spread } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_CONSOLE_ROUNDS ?? 15);
const REPEAT = Number(process.env.BENCH_CONSOLE_REPEAT ?? 10);
const SIZES = { small: 1_000, large: 100_000 };
const BUNDLE = ".tmp/bench/console-worker.mjs";
const CASES = ["purchase.lookup", "kpis.30_days", "kpis.365_days", "search.user", "search.order", "customer"];

await build({ entryPoints: ["bench/console-worker.ts"], bundle: true, format: "esm", platform: "neutral", conditions: ["workerd", "worker", "browser"], mainFields: ["browser", "module", "main"], target: "es2023", outfile: BUNDLE, logLevel: "warning" });
const migrations = (await readD1Migrations("./migrations")).flatMap((m) => m.queries);
const mf = new Miniflare(convertV4MiniflareOptions({ workers: [{ name: "bench-console", modules: true, scriptPath: BUNDLE, compatibilityDate: "2026-11-01", d1Databases: { SMALL: "bench-small", LARGE: "bench-large" } }], log: new NoOpLog() }));
try {
	console.log(`bench:console: seeding ${SIZES.small.toLocaleString("en")} and ${SIZES.large.toLocaleString("en")} purchases`);
	for (const [db, n] of Object.entries(SIZES)) {
		const started = performance.now();
		const response = await mf.dispatchFetch(`http://bench/seed?db=${db}`, { method: "POST", body: JSON.stringify({ n, migrations }) });
		if (!response.ok) throw new Error(`seeding ${db}: ${await response.text()}`);
		console.log(`  ${db}: ${(await response.json() as { purchases: number }).purchases} purchases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
	}
	const time = async (db: string, name: string): Promise<number> => {
		const started = performance.now();
		for (let i = 0; i < REPEAT; i++) {
			const response = await mf.dispatchFetch(`http://bench/run?db=${db}&case=${name}`);
			if (!response.ok) throw new Error(`${name} on ${db}: ${await response.text()}`);
			await response.arrayBuffer();
		}
		return (performance.now() - started) / REPEAT;
	};
	// Warm both databases and the isolate.
	for (const name of CASES) for (const db of ["small", "large"]) await time(db, name);
	const ms: Record<string, { small: number[]; large: number[]; ratios: number[] }> = Object.fromEntries(CASES.map((name) => [name, { small: [], large: [], ratios: [] }]));
	for (let r = 0; r < ROUNDS; r++) {
		for (const name of CASES) {
			const order = r % 2 === 0 ? (["small", "large"] as const) : (["large", "small"] as const);
			const measured: Record<string, number> = {};
			for (const db of order) measured[db] = await time(db, name);
			ms[name]!.small.push(measured.small!);
			ms[name]!.large.push(measured.large!);
			ms[name]!.ratios.push(measured.large! / measured.small!);
		}
	}
	console.log(`\nms per request (median of ${ROUNDS} rounds of ${REPEAT}), and 100,000 ÷ 1,000 purchases`);
	const figures: Record<string, number> = {};
	for (const name of CASES) {
		const s = spread(ms[name]!.ratios);
		figures[`${name}.large_vs_small`] = round(s.median);
		console.log(`  console.${name.padEnd(18)} ${median(ms[name]!.large).toFixed(2).padStart(7)} ms with 100k, ${median(ms[name]!.small).toFixed(2).padStart(7)} ms with 1k: ${s.median.toFixed(2)}×  (rounds ${s.min.toFixed(2)}–${s.max.toFixed(2)})`);
	}
	writeSection("console", figures, {
		date: new Date().toISOString(),
		node: process.version,
		sizes: SIZES,
		rounds: ROUNDS,
		repeat: REPEAT,
		clock: "elapsed time seen from Node (Miniflare dispatchFetch)",
		ms: Object.fromEntries(CASES.map((name) => [name, { large: spread(ms[name]!.large), small: spread(ms[name]!.small) }])),
	});
	console.log("\nwrote bench/results.json");
} finally {
	await mf.dispose();
}
