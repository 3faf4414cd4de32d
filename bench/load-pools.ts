/**
 * What bench/load.ts presents, made before any round so that making it is not timed: request bodies for fresh
 * verifications, store notifications about owned purchases (as the emulator would deliver them), and users with a
 * chosen number of purchases. Everything goes through the service's and the emulator's real HTTP endpoints.
 */
import { APPLE_SAMPLE } from "../test/support/apple-fixtures.ts";
import { SAMPLE_APP } from "../test/support/fixtures.ts";

/** One app the benchmark verifies for: its id and App Store bundle id. */
export interface BenchApp {
	id: string;
	bundleId: string;
}

export const SAMPLE: BenchApp = { id: SAMPLE_APP.id, bundleId: APPLE_SAMPLE.bundleId };

const TRUE = '{"complete_purchase":true}';

/** A request body for /verify presenting an App Store signed transaction for `user`. */
export function appleBody(app: BenchApp, user: string, jws: string, transactionId: string, productId: string): string {
	return JSON.stringify({
		userIdentifier: user,
		appId: app.id,
		purchaseDetails: {
			verificationData: { serverVerificationData: jws, localVerificationData: "", source: "app_store" },
			productID: productId,
			purchaseID: transactionId,
			status: "purchased",
			transactionDate: String(Date.now()),
		},
	});
}

/** A request body for /verify presenting a Google Play purchase for `user`. */
export function googleBody(app: BenchApp, user: string, purchase: { purchaseToken: string; localVerificationData: unknown }, productId: string): string {
	const local = typeof purchase.localVerificationData === "string" ? purchase.localVerificationData : JSON.stringify(purchase.localVerificationData);
	return JSON.stringify({
		userIdentifier: user,
		appId: app.id,
		purchaseDetails: {
			verificationData: { serverVerificationData: purchase.purchaseToken, localVerificationData: local, source: "google_play" },
			productID: productId,
			purchaseID: "GPA.0000-0000-0000-00000",
			status: "purchased",
			transactionDate: String(Date.now()),
		},
	});
}

/** Items handed out once each. Running out is recorded, never papered over by handing one out twice. */
export class Pool<T> {
	readonly #items: T[] = [];
	#next = 0;
	exhausted = false;

	get available(): number {
		return this.#items.length - this.#next;
	}

	push(...items: T[]): void {
		this.#items.push(...items);
	}

	next(): T {
		const item = this.#items[this.#next];
		if (item === undefined) {
			this.exhausted = true;
			return this.#items[this.#items.length - 1]!;
		}
		this.#next++;
		return item;
	}

	take(count: number): T[] {
		return Array.from({ length: Math.min(count, this.available) }, () => this.next());
	}
}

/** `count` calls of `make`, 16 at a time. */
export async function inParallel<T>(count: number, make: (i: number) => Promise<T>): Promise<T[]> {
	const made: T[] = [];
	let started = 0;
	const worker = async () => {
		while (started < count) {
			const i = started++;
			made.push(await make(i));
		}
	};
	await Promise.all(Array.from({ length: Math.min(16, count) }, worker));
	return made;
}

/** /verify bodies with App Store signed transactions the service has never seen, each for a user of its own. */
export async function freshAppleBodies(emulator: string, app: BenchApp, count: number): Promise<string[]> {
	return inParallel(count, async () => {
		const created = await post<{ signedTransaction: string; transactionId: string }>(`${emulator}/_emulator/apple/transactions`, {
			bundleId: app.bundleId,
			productId: "premium_lifetime",
			type: "Non-Consumable",
		});
		return appleBody(app, `load-fresh-${created.transactionId}`, created.signedTransaction, created.transactionId, "premium_lifetime");
	});
}

/** A notification as the store would deliver it: what the emulator's outbox hands out. */
export interface Delivery {
	deliveryId: string;
	store: "app_store" | "google_play";
	transactionId: string;
	path: string;
	headers: Record<string, string>;
	body: string;
}

/**
 * `count` App Store notifications about purchases users own: each a purchase bought, claimed through /verify, then
 * refunded by Apple (REFUND, signed by the emulator as Apple signs it).
 */
export async function appleRefunds(service: string, emulator: string, app: BenchApp, count: number): Promise<void> {
	await inParallel(count, async () => {
		const created = await post<{ signedTransaction: string; transactionId: string }>(`${emulator}/_emulator/apple/transactions`, {
			bundleId: app.bundleId,
			productId: "premium_lifetime",
			type: "Non-Consumable",
		});
		await verifyOrThrow(service, appleBody(app, `load-notify-${created.transactionId}`, created.signedTransaction, created.transactionId, "premium_lifetime"));
		await post(`${emulator}/_emulator/apple/transactions/${created.transactionId}`, { revoked: true });
	});
}

/**
 * `count` Google Play notifications about subscriptions users own: each bought, claimed through /verify, then its
 * renewal turned off (SUBSCRIPTION_CANCELED, pushed as Pub/Sub pushes it).
 */
export async function googleCancellations(service: string, emulator: string, app: { id: string; packageName: string }, count: number): Promise<void> {
	await inParallel(count, async () => {
		const purchase = await post<{ purchaseToken: string; localVerificationData: unknown }>(`${emulator}/_emulator/google/purchases`, {
			packageName: app.packageName,
			productId: "premium_monthly",
			type: "subscription",
			acknowledged: true,
		});
		await verifyOrThrow(service, googleBody({ id: app.id, bundleId: "" }, `load-notify-${purchase.purchaseToken.slice(0, 12)}`, purchase, "premium_monthly"));
		await post(`${emulator}/_emulator/google/purchases/${encodeURIComponent(purchase.purchaseToken)}`, { state: "canceled" });
	});
}

/** What the emulator's outbox holds for a store: every notification made and not yet delivered. */
export async function outbox(emulator: string, store: Delivery["store"]): Promise<Delivery[]> {
	const response = await fetch(`${emulator}/_emulator/outbox`);
	if (!response.ok) throw new Error(`GET /_emulator/outbox: ${response.status}`);
	const { deliveries } = (await response.json()) as { deliveries: (Omit<Delivery, "path"> & { url: string })[] };
	return deliveries.filter((d) => d.store === store).map((d) => ({ ...d, path: new URL(d.url).pathname }));
}

/** Tells the emulator the service took a delivery (it would otherwise hand it out again). */
export async function delivered(emulator: string, delivery: Delivery, status: number): Promise<void> {
	await post(`${emulator}/_emulator/outbox/${delivery.deliveryId}`, { status });
}

/** How many store calls the emulator received about `subject` (a transaction id or purchase token), or to `endpoint`. */
export async function storeCalls(emulator: string, query: { match?: string; endpoint?: string }): Promise<number> {
	const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
	const response = await fetch(`${emulator}/_emulator/calls?${params}`);
	if (!response.ok) throw new Error(`GET /_emulator/calls: ${response.status}`);
	return ((await response.json()) as { count: number }).count;
}

/**
 * A user who owns `count` App Store purchases: `count - 1` consumables (coins) and one premium_lifetime, each
 * verified through /verify. What an access check for `premium` must find among them is the one premium purchase.
 */
export async function userWithPurchases(service: string, emulator: string, app: BenchApp, user: string, count: number): Promise<void> {
	await inParallel(count, async (i) => {
		const [productId, type] = i === 0 ? ["premium_lifetime", "Non-Consumable"] : ["coins_100", "Consumable"];
		const created = await post<{ signedTransaction: string; transactionId: string }>(`${emulator}/_emulator/apple/transactions`, { bundleId: app.bundleId, productId, type });
		await verifyOrThrow(service, appleBody(app, user, created.signedTransaction, created.transactionId, productId));
	});
}

async function verifyOrThrow(service: string, body: string): Promise<void> {
	const response = await fetch(`${service}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body });
	const text = await response.text();
	if (response.status !== 200 || text !== TRUE) throw new Error(`setting up: /verify answered ${response.status} ${text.slice(0, 300)}`);
}

export async function post<T = unknown>(url: string, body: unknown): Promise<T> {
	const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
	if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
	return (await response.json()) as T;
}
