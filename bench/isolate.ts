/**
 * Runs bench/isolate-worker.ts in workerd under Miniflare: `count` copies of it in one workerd process, each its
 * own isolate (Miniflare gives every named worker one), reached by host name. Copy 0 is a throwaway that warms the
 * process (BoringSSL's one-time set-up is per process, and a production workerd process is long-lived); every
 * other copy answers one first-call measurement.
 *
 * The clock: the CPU time of the workerd process (all its threads), read from /proc/<pid>/task/<tid>/schedstat in
 * nanoseconds before and after each request. CPU time is what Workers limit and bill, and on a machine shared with
 * other work it is not inflated by waiting for a core, as wall time is. Where /proc is missing (not Linux), wall
 * time seen from here is used instead, and the results say so.
 */
import { readdirSync, readFileSync } from "node:fs";
import { build } from "esbuild";
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from "miniflare";

export const ISOLATE_WORKER_BUNDLE = ".tmp/bench/isolate-worker.mjs";
/** As in wrangler.toml. */
const COMPATIBILITY_DATE = "2026-11-01";

/** How wrangler resolves packages for workerd; every bundle the benchmarks build for workerd uses it. */
export const WORKERD_RESOLUTION = { conditions: ["workerd", "worker", "browser"], mainFields: ["browser", "module", "main"] };

export async function buildIsolateWorker(): Promise<void> {
	await build({
		entryPoints: ["bench/isolate-worker.ts"],
		bundle: true,
		format: "esm",
		platform: "neutral",
		...WORKERD_RESOLUTION,
		target: "es2023",
		outfile: ISOLATE_WORKER_BUNDLE,
		logLevel: "warning",
	});
}

export interface Timed {
	/** CPU time of the workerd process during the request, when it can be read; else wall time. */
	ms: number;
	wallMs: number;
}

export interface Isolates {
	/** "cpu" when the workerd process's CPU time is read, "wall" when only wall time is available. */
	readonly clock: "cpu" | "wall";
	/** GET `path` from copy `index` (1-based; copy 0 is the warm-up), timed. */
	time(index: number, path: string): Promise<Timed>;
	dispose(): Promise<void>;
}

export async function startIsolates(count: number, script: string, bindings: Record<string, string>): Promise<Isolates> {
	const workers = Array.from({ length: count + 1 }, (_, i) => ({
		name: `bench-${i}`,
		modules: true,
		script,
		scriptPath: ISOLATE_WORKER_BUNDLE,
		compatibilityDate: COMPATIBILITY_DATE,
		bindings,
		routes: [`bench-${i}.isolate/*`],
	}));
	const before = workerdChildren();
	const mf = new Miniflare(convertV4MiniflareOptions({ workers, log: new NoOpLog(), handleStructuredLogs: () => {} }));
	await mf.ready;
	const pid = [...workerdChildren()].find((candidate) => !before.has(candidate));
	const cpu = pid === undefined ? () => undefined : () => processCpuNs(pid);
	const clock = cpu() === undefined ? "wall" : "cpu";
	const time = async (index: number, path: string): Promise<Timed> => {
		const cpuBefore = cpu();
		const start = performance.now();
		const response = await mf.dispatchFetch(`http://bench-${index}.isolate${path}`);
		const text = await response.text();
		const wallMs = performance.now() - start;
		const cpuAfter = cpu();
		if (!response.ok) throw new Error(`bench isolate ${index} ${path}: ${response.status} ${text}`);
		return { ms: cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / 1e6 : wallMs, wallMs };
	};
	// Warm the workerd process, not the isolates that will be measured.
	for (const what of ["none", "ours", "ours-apple", "raw", "chain-apple"]) await time(0, `/first?what=${what}`);
	return { clock, time, dispose: () => mf.dispose() };
}

/** workerd processes started by this Node process. */
export function workerdChildren(): Set<number> {
	const found = new Set<number>();
	let entries: string[];
	try {
		entries = readdirSync("/proc");
	} catch {
		return found;
	}
	for (const entry of entries) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			if (parent === process.pid && readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "workerd") found.add(Number(entry));
		} catch {
			// gone already
		}
	}
	return found;
}

/** Nanoseconds the process's threads have spent on a CPU (the first field of each thread's schedstat). */
export function processCpuNs(pid: number): number | undefined {
	try {
		let total = 0;
		for (const tid of readdirSync(`/proc/${pid}/task`)) {
			try {
				total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
			} catch {
				// a thread that just ended
			}
		}
		return total;
	} catch {
		return undefined;
	}
}
