/** The part of autocannon's API bench/load.ts uses (the package ships no types). */
declare module "autocannon" {
	export interface Histogram {
		average: number;
		mean: number;
		min: number;
		max: number;
		p50: number;
		p90: number;
		p99: number;
		total: number;
	}
	export interface Result {
		duration: number;
		errors: number;
		timeouts: number;
		non2xx: number;
		"2xx": number;
		mismatches: number;
		latency: Histogram;
		requests: Histogram & { sent: number };
		statusCodeStats: Record<string, { count: number }>;
	}
	export interface Request {
		method?: string;
		path?: string;
		headers?: Record<string, string>;
		body?: string;
		setupRequest?: (request: Request, context: Record<string, unknown>) => Request | undefined;
		onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
	}
	export interface Options {
		url: string;
		connections?: number;
		duration?: number;
		amount?: number;
		timeout?: number;
		pipelining?: number;
		requests?: Request[];
		excludeErrorStats?: boolean;
	}
	export interface Instance {
		stop(): void;
	}
	function autocannon(options: Options, callback: (error: Error | null, result: Result) => void): Instance;
	export default autocannon;
}
