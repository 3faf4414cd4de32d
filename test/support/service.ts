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
	linkedPurchaseToken: string | null;
	notifications: SentNotification[];
}

export interface GooglePurchaseUpdate {
	state?: string;
	expiresInSeconds?: number;
	acknowledged?: boolean;
	/** Void it (refunded): it joins voidedpurchases.list and a voidedPurchaseNotification is sent. */
	refund?: true;
	/** With refund: 0 user, 1 developer, 2 Google; and why, 0-7 (default 0 and 1). */
	voidedSource?: 0 | 1 | 2;
	voidedReason?: number;
	/** Send the RTDN for the change (default true). */
	notify?: boolean;
}

export interface GoogleNotifyInput {
	kind: "subscription" | "one_time" | "voided" | "test";
	purchaseToken?: string;
	/** kind "test" without a purchase. */
	packageName?: string;
	notificationType?: number;
	refundType?: 1 | 2;
	notify?: boolean;
}

/** A notification the admin API sent (or, with notify false, only recorded). */
export interface SentNotification {
	messageId?: string;
	notificationUUID?: string;
	type?: string;
	notificationType?: string;
	subtype?: string;
	sent: boolean;
}

/** GET /_emulator/notifications */
export interface EmulatorNotification {
	id: string;
	store: "app_store" | "google_play" | "amazon";
	type: string;
	subtype: string | null;
	transactionId: string | null;
	createdAt: number;
	sent: boolean;
	deliveries: { at: number; status: number }[];
	delivered: boolean;
}

/** GET /_emulator/outbox */
export interface OutboxDelivery {
	deliveryId: string;
	notificationId: string;
	store: "app_store" | "google_play" | "amazon";
	type: string;
	subtype: string | null;
	transactionId: string | null;
	attempts: number;
	/** notify.appleUrl / googleUrl, or the service's path when they are not set. */
	url: string;
	method: "POST";
	headers: Record<string, string>;
	body: string;
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
		/** Subscriptions: the earlier purchase this one upgrades, downgrades or resubscribes. */
		linkedPurchaseToken?: string;
		/** SUBSCRIPTION_PURCHASED / ONE_TIME_PRODUCT_PURCHASED: true sends it, false only records it; none when left out. */
		notify?: boolean;
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
	/** Change a purchase as Google would; the RTDN for the change is sent unless `notify: false`. Answers what the emulator holds now. */
	async updateGooglePurchase(token: string, patch: GooglePurchaseUpdate): Promise<Record<string, unknown> & { notifications: SentNotification[] }> {
		return json(await emulatorFetch(`/google/purchases/${encodeURIComponent(token)}`, { method: "POST", body: JSON.stringify(patch) }));
	},
	/** Any Real-time Developer Notification, about a purchase as it stands now (or a test notification). */
	async googleNotify(input: GoogleNotifyInput): Promise<{ messageId: string; body: string; notification: Record<string, unknown> }> {
		const response = await emulatorFetch("/google/notifications", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
		if (response.status !== 201) throw new Error(`emulator refused notification: ${await response.text()}`);
		return json(response);
	},
	/** Every notification the emulator made (newest last), filtered by store, transaction id / purchase token, type. */
	async notifications(filter: { store?: "app_store" | "google_play" | "amazon"; transaction?: string; type?: string } = {}): Promise<EmulatorNotification[]> {
		const query = new URLSearchParams(Object.entries(filter).filter((entry): entry is [string, string] => entry[1] !== undefined));
		return (await json<{ notifications: EmulatorNotification[] }>(await emulatorFetch(`/notifications?${query}`))).notifications;
	},
	/** The deliveries due (hold mode): every notification sent and not yet delivered, oldest first. Marks nothing. */
	async outbox(): Promise<OutboxDelivery[]> {
		return (await json<{ deliveries: OutboxDelivery[] }>(await emulatorFetch("/outbox"))).deliveries;
	},
	/** Tells the emulator what the receiver answered for one delivery: a 2xx delivers it, anything else keeps it. */
	async reportDelivery(deliveryId: string, status: number): Promise<EmulatorNotification> {
		const response = await emulatorFetch(`/outbox/${encodeURIComponent(deliveryId)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ status }) });
		if (response.status !== 200) throw new Error(`emulator refused the delivery report: ${await response.text()}`);
		return json(response);
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
	/** The calls received (what reached "the store"), with when and how each was answered. */
	async callLog(match: string, endpoint?: string): Promise<{ at: number; endpoint: string; subject: string; status: number }[]> {
		const query = new URLSearchParams({ match, ...(endpoint ? { endpoint } : {}) });
		return (await json<{ calls: { at: number; endpoint: string; subject: string; status: number }[] }>(await emulatorFetch(`/calls?${query}`))).calls;
	},
	/** The store's request limit for a bucket ("google.one_time_purchases", "apple.transactions", ...), as the stores enforce it. */
	async limit(setting: { bucket: string; limit: number; periodSeconds: number; match?: string }): Promise<void> {
		const response = await emulatorFetch("/limits", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(setting) });
		if (response.status !== 201) throw new Error(`emulator refused limit: ${await response.text()}`);
	},
	async clearLimits(): Promise<void> {
		await emulatorFetch("/limits", { method: "DELETE" });
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

export interface ReceivedWebhook {
	at: number;
	type: string | null;
	headers: Record<string, string>;
	body: string;
	signatureValid: boolean;
	status: number;
}

/** What the emulator's webhook receiver got, optionally only the webhooks about one transaction. */
export async function receivedWebhooks(transactionId?: string): Promise<ReceivedWebhook[]> {
	const query = transactionId === undefined ? "" : `?transaction=${encodeURIComponent(transactionId)}`;
	return (await json<{ webhooks: ReceivedWebhook[] }>(await fetch(`${env.TEST_EMULATOR_URL}/_emulator/webhooks${query}`))).webhooks;
}

/** Polls `check` until it holds (events travel through a queue), for up to `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 5_000): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		const result = await check();
		if (result !== undefined && result !== false) return result;
		if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}
