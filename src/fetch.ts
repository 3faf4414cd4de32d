import type { Store } from "./purchase";
import { StoreUnreachable } from "./answers";

/**
 * One fetch to a store with a deadline. Network failures and timeouts become StoreUnreachable; any HTTP
 * answer is returned for the caller to judge (a 404 from a store is a verdict, not an outage).
 */
export async function storeFetch(store: Store, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
	try {
		return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
	} catch (err) {
		const timedOut = err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError");
		throw new StoreUnreachable(store, timedOut ? `no answer within ${timeoutMs} ms` : "could not connect", { cause: err });
	}
}

/** Reads a JSON body, or reports the store as unreachable when it sent something else. */
export async function readJson(store: Store, response: Response): Promise<unknown> {
	try {
		return await response.json();
	} catch (err) {
		throw new StoreUnreachable(store, `answered ${response.status} with a body that is not JSON`, { cause: err });
	}
}

/** Seconds to wait before retrying, from a Retry-After header (seconds or HTTP date). */
export function retryAfterSeconds(response: Response): number | undefined {
	const value = response.headers.get("retry-after");
	if (!value) return undefined;
	const seconds = Number(value);
	if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds));
	const date = Date.parse(value);
	return Number.isNaN(date) ? undefined : Math.max(1, Math.ceil((date - Date.now()) / 1000));
}
