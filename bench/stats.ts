/** Small statistics shared by the benchmarks: every reported ratio is a median of per-round ratios. */

export function median(values: readonly number[]): number {
	if (values.length === 0) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The spread of a set of per-round figures: lowest, quartiles, highest. */
export function spread(values: readonly number[]): { min: number; q1: number; median: number; q3: number; max: number; n: number } {
	const sorted = [...values].sort((a, b) => a - b);
	const at = (q: number) => {
		if (sorted.length === 0) return Number.NaN;
		const index = (sorted.length - 1) * q;
		const low = Math.floor(index);
		const high = Math.ceil(index);
		return sorted[low]! + (sorted[high]! - sorted[low]!) * (index - low);
	};
	return { min: sorted[0] ?? Number.NaN, q1: at(0.25), median: median(sorted), q3: at(0.75), max: sorted.at(-1) ?? Number.NaN, n: sorted.length };
}

export function round(value: number, digits = 3): number {
	if (!Number.isFinite(value)) return value;
	const factor = 10 ** digits;
	return Math.round(value * factor) / factor;
}
