/**
 * bench/results.json: `npm run bench` writes the `p1` figures, `npm run bench:load` the `load` ones,
 * `npm run bench:console` the `console` ones; each keeps
 * the other's. The figures outside checks read are top-level keys with stable dotted names ("p1.warm_vs_raw",
 * "load.errors", …), each also found at the same path in the nested sections, next to the detail behind it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export const RESULTS_FILE = "bench/results.json";

export function writeSection(section: "p1" | "load" | "console", figures: Record<string, number>, detail: Record<string, unknown>): void {
	let previous: Record<string, unknown> = {};
	if (existsSync(RESULTS_FILE)) {
		try {
			previous = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Record<string, unknown>;
		} catch {
			previous = {};
		}
	}
	const kept = Object.fromEntries(Object.entries(previous).filter(([key]) => key !== section && !key.startsWith(`${section}.`)));
	const flat = Object.fromEntries(Object.entries(figures).map(([name, value]) => [`${section}.${name}`, value]));
	const next = { ...kept, ...flat, [section]: { ...figures, ...detail } };
	const ordered = Object.fromEntries(Object.entries(next).sort(([a], [b]) => order(a) - order(b) || a.localeCompare(b)));
	writeFileSync(RESULTS_FILE, `${JSON.stringify(ordered, null, 2)}\n`);
}

/** Stable names first, then the detail sections. */
function order(key: string): number {
	return key.includes(".") ? 0 : 1;
}
