/**
 * Test helpers for the Amazon Appstore: the emulator's Amazon admin API, the body a wrapper app POSTs to /verify, and
 * delivering Amazon's notifications, whose SNS subscription confirmation comes first. Nothing here mocks the service.
 */
import { env } from "cloudflare:workers";
import { loadConfig } from "../../src/config/load";
import { SAMPLE_APP } from "./fixtures.ts";
import { deliver, type DeliveredNotification } from "./notifications.ts";
import { emulator, json, type OutboxDelivery } from "./service.ts";

export interface CreatedAmazonReceipt {
	receiptId: string;
	userId: string;
	packageName: string;
	productId: string;
	productType: "ENTITLED" | "CONSUMABLE" | "SUBSCRIPTION";
	termSku: string | null;
	renewalDate: number | null;
	cancelDate: number | null;
	/** The Appstore SDK's UserData as JSON, as the app forwards it. */
	localVerificationData: string;
	notifications: SentAmazonNotification[];
}

export interface SentAmazonNotification {
	messageId: string;
	type: string;
	sent: boolean;
	/** Waiting for the service to confirm the SNS subscription. */
	held: boolean;
}

export interface CreateAmazonReceiptInput {
	productId: string;
	packageName?: string;
	type?: "entitlement" | "consumable" | "subscription";
	userId?: string;
	sandbox?: boolean;
	test?: boolean;
	beta?: boolean;
	expiresInSeconds?: number;
	autoRenew?: boolean;
	termSku?: string;
	quantity?: number;
	replaces?: string;
	notify?: boolean;
}

export interface AmazonReceiptUpdate {
	cancel?: true;
	refund?: true;
	autoRenew?: boolean;
	renew?: true;
	expiresInSeconds?: number;
	gracePeriod?: { seconds: number } | false;
	expire?: true;
	gone?: true;
	notify?: boolean;
}

async function adminFetch(path: string, init?: RequestInit): Promise<Response> {
	return fetch(`${env.TEST_EMULATOR_URL}/_emulator/amazon${path}`, init);
}

const post = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export const amazonEmulator = {
	async createReceipt(input: CreateAmazonReceiptInput): Promise<CreatedAmazonReceipt> {
		const response = await adminFetch("/receipts", post({ packageName: SAMPLE_APP.packageName, ...input }));
		if (response.status !== 201) throw new Error(`emulator refused receipt: ${await response.text()}`);
		return json(response);
	},
	async receipt(receiptId: string): Promise<Record<string, unknown>> {
		return json(await adminFetch(`/receipts/${encodeURIComponent(receiptId)}`));
	},
	/** A change as Amazon would make it; its Real-time Notification is sent unless `notify: false`. */
	async updateReceipt(receiptId: string, patch: AmazonReceiptUpdate): Promise<Record<string, unknown> & { notifications: SentAmazonNotification[] }> {
		const response = await adminFetch(`/receipts/${encodeURIComponent(receiptId)}`, post(patch));
		if (response.status !== 200) throw new Error(`emulator refused the change: ${await response.text()}`);
		return json(response);
	},
	async notify(input: { receiptId: string; notificationType: string; signatureVersion?: "1" | "2"; notify?: boolean }): Promise<{ messageId: string; body: string; held: boolean }> {
		const response = await adminFetch("/notifications", post(input));
		if (response.status !== 201) throw new Error(`emulator refused notification: ${await response.text()}`);
		return json(response);
	},
	/** The endpoint subscribed anew: a SubscriptionConfirmation, and nothing else until the service confirms it. */
	async resubscribe(): Promise<string> {
		return (await json<{ confirmationMessageId: string }>(await adminFetch("/sns/resubscribe", { method: "POST" }))).confirmationMessageId;
	},
};

/** The body a wrapper app POSTs to /verify for an Amazon purchase: the receipt id, and UserData as JSON. */
export function amazonVerifyBody(receipt: CreatedAmazonReceipt, overrides: { userIdentifier?: string; appId?: string | number; productID?: string; status?: string } = {}) {
	return {
		userIdentifier: overrides.userIdentifier ?? "user-1",
		appId: overrides.appId ?? Number(SAMPLE_APP.id),
		purchaseDetails: {
			verificationData: { serverVerificationData: receipt.receiptId, localVerificationData: receipt.localVerificationData, source: "amazon" },
			productID: overrides.productID ?? receipt.productId,
			purchaseID: receipt.receiptId,
			status: overrides.status ?? "purchased",
			transactionDate: String(Date.now()),
		},
	};
}

/** The validate body for an Amazon receipt. */
export function amazonValidateBody(receipt: CreatedAmazonReceipt, userId: string, extra: Record<string, unknown> = {}) {
	return { store: "amazon", userId, productId: receipt.productId, receiptId: receipt.receiptId, amazonUserId: receipt.userId, ...extra };
}

/** Amazon's deliveries due, the SNS subscription confirmation included. */
export async function amazonOutbox(): Promise<OutboxDelivery[]> {
	return (await emulator.outbox()).filter((d) => d.store === "amazon");
}

/**
 * Delivers Amazon's notifications (those `only` picks) as SNS would: the subscription confirmation first, then, once
 * the service has confirmed it, what waited for it. Rounds until nothing more is due (or nothing moves).
 */
export async function deliverAmazon(only: (d: OutboxDelivery) => boolean = () => true): Promise<DeliveredNotification[]> {
	const delivered: DeliveredNotification[] = [];
	for (let round = 0; round < 5; round++) {
		const due = (await amazonOutbox()).filter((d) => d.type === "SubscriptionConfirmation" || only(d)).filter((d) => !delivered.some((x) => x.deliveryId === d.deliveryId));
		if (due.length === 0) break;
		for (const d of due) delivered.push(await deliver(d));
	}
	return delivered;
}

/** Picks Amazon deliveries about one receipt. */
export function aboutReceipt(receiptId: string): (d: OutboxDelivery) => boolean {
	return (d) => d.transactionId === receiptId;
}

/** Every Amazon shared secret this run's configuration holds: none may ever appear in a log line. */
export function amazonSecrets(): string[] {
	const loaded = loadConfig(env);
	if (!loaded.ok) return [];
	return loaded.config.apps.flatMap((app) => (app.amazon ? [app.amazon.sharedSecret] : []));
}
