/**
 * Test helpers: talk to the service as an app would (through its fetch handler) and to the store emulator
 * through its admin API. Nothing here mocks the service; the emulator plays the stores.
 */
import { env, exports } from "cloudflare:workers";
import { SAMPLE_APP } from "./fixtures.ts";
export { claimStub } from "../../src/ledger/grant";
import { claimStub } from "../../src/ledger/grant";

export const BASE = "https://iap-edge.test";

/** A client address of its own for each request, as real traffic has (the per-address rate limit then stays out of the way). */
function randomClientIp(): string {
	const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
	return `10.${a}.${b}.${c}`;
}

export async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
	const init: RequestInit = { method, headers: { "cf-connecting-ip": randomClientIp(), ...headers } };
	if (body !== undefined) {
		init.body = typeof body === "string" ? body : JSON.stringify(body);
		(init.headers as Record<string, string>)["content-type"] = "application/json";
	}
	return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

/** As `call`, with the body sent exactly as given (bytes, or text that need not be JSON), labelled JSON all the same. */
export async function callRaw(method: string, path: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
	return exports.default.fetch(new Request(`${BASE}${path}`, { method, body, headers: { "cf-connecting-ip": randomClientIp(), "content-type": "application/json", ...headers } }));
}

export async function json<T = any>(response: Response): Promise<T> {
	return (await response.json()) as T;
}

export function bearer(apiKey: string = SAMPLE_APP.apiKey): Record<string, string> {
	return { authorization: `Bearer ${apiKey}` };
}

export interface CreatedGooglePurchase {
	purchaseToken: string;
	orderId: string;
	packageName: string;
	productId: string;
	type: "product" | "subscription";
	localVerificationData: string;
	expiryTime: number | null;
}

async function emulatorFetch(path: string, init?: RequestInit): Promise<Response> {
	return fetch(`${env.TEST_EMULATOR_URL}/_emulator${path}`, init);
}

export const emulator = {
	async createGooglePurchase(input: {
		productId: string;
		packageName?: string;
		type?: "product" | "subscription";
		state?: string;
		test?: boolean;
		acknowledged?: boolean;
		expiresInSeconds?: number;
		gone?: boolean;
	}): Promise<CreatedGooglePurchase> {
		const response = await emulatorFetch("/google/purchases", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ packageName: SAMPLE_APP.packageName, ...input }),
		});
		if (response.status !== 201) throw new Error(`emulator refused purchase: ${await response.text()}`);
		return json(response);
	},
	async googlePurchase(token: string): Promise<{ acknowledged: boolean; consumed: boolean; state: string }> {
		return json(await emulatorFetch(`/google/purchases/${encodeURIComponent(token)}`));
	},
	async updateGooglePurchase(token: string, patch: Record<string, unknown>): Promise<void> {
		await emulatorFetch(`/google/purchases/${encodeURIComponent(token)}`, { method: "POST", body: JSON.stringify(patch) });
	},
	async fault(fault: { match: string; mode: "error" | "slow" | "garbage"; status?: number; delayMs?: number; times?: number }): Promise<void> {
		const response = await emulatorFetch("/faults", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(fault) });
		if (response.status !== 201) throw new Error(`emulator refused fault: ${await response.text()}`);
	},
	async calls(match: string, endpoint?: string): Promise<number> {
		const query = new URLSearchParams({ match, ...(endpoint ? { endpoint } : {}) });
		return (await json<{ count: number }>(await emulatorFetch(`/calls?${query}`))).count;
	},
	async expireGoogleTokens(): Promise<void> {
		await emulatorFetch("/google/expire-tokens", { method: "POST" });
	},
};

/** The body a wrapper app POSTs to /verify for a Google Play purchase. */
export function googleVerifyBody(purchase: CreatedGooglePurchase, overrides: { userIdentifier?: string; appId?: string | number; productID?: string; status?: string } = {}) {
	return {
		userIdentifier: overrides.userIdentifier ?? "user-1",
		appId: overrides.appId ?? Number(SAMPLE_APP.id),
		purchaseDetails: {
			verificationData: {
				serverVerificationData: purchase.purchaseToken,
				localVerificationData: purchase.localVerificationData,
				source: "google_play",
			},
			productID: overrides.productID ?? purchase.productId,
			purchaseID: purchase.orderId,
			status: overrides.status ?? "purchased",
			transactionDate: String(Date.now()),
		},
	};
}

export function uniqueUser(prefix = "user"): string {
	return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** A claim object as a Durable Object stub (for cloudflare:test's alarm and eviction helpers). */
export function claimObject(store: string, unitId: string): DurableObjectStub {
	return env.CLAIMS.get(env.CLAIMS.idFromName(`${store}:${unitId}`));
}

/** What a claim holds for one of its transactions (the unit is the transaction itself unless it is a subscription). */
export async function claimedTransaction(store: string, transactionId: string, unitId = transactionId) {
	const record = await claimStub(env, store, unitId).record();
	const transaction = record?.transactions.find((t) => t.purchase.transactionId === transactionId);
	return record && transaction ? { userId: record.userId, ...transaction } : undefined;
}
