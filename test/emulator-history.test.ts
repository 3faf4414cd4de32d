import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyAppleSignedData } from "../src/apple/signed-data";
import { getAccessToken, invalidateAccessToken } from "../src/google/auth";
import type { GoogleServiceAccount } from "../src/config/schema";
import { APPLE_ISSUER_ID, APPLE_SAMPLE } from "./support/apple-fixtures.ts";
import { appleBearerToken, appleEmulator, testApp, testConfig } from "./support/apple-service.ts";
import { SAMPLE_APP, TEST_APPS } from "./support/fixtures.ts";
import { emulator, json } from "./support/service.ts";

/**
 * What the stores list for the scheduled catch-up, played by the emulator from what it holds: Apple's Get
 * Notification History and Google's voidedpurchases.list, with their paging (pages of 2 in tests), filters, limits
 * and authentication. Each test keeps to its own customer or package window: the emulator is shared by every test of the file.
 */

const DAY = 24 * 3600 * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function history(body: Record<string, unknown>, options: { token?: string | null; paginationToken?: string; environment?: "production" | "sandbox" } = {}) {
	const token =
		options.token === undefined
			? await appleBearerToken({ privateKeyPem: testApp(APPLE_SAMPLE.appId).apple!.api!.privateKey, keyId: APPLE_SAMPLE.keyId, issuerId: APPLE_ISSUER_ID, bundleId: APPLE_SAMPLE.bundleId })
			: options.token;
	const query = options.paginationToken === undefined ? "" : `?paginationToken=${encodeURIComponent(options.paginationToken)}`;
	return fetch(`${env.TEST_EMULATOR_URL}/apple/${options.environment ?? "production"}/inApps/v1/notifications/history${query}`, {
		method: "POST",
		headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
		body: JSON.stringify(body),
	});
}

async function notificationUUIDs(page: { notificationHistory: { signedPayload: string }[] }): Promise<string[]> {
	const roots = testConfig().appleTrustStore;
	return Promise.all(page.notificationHistory.map(async (n) => (await verifyAppleSignedData(n.signedPayload, { roots, allowLocalTesting: false })).payload.notificationUUID as string));
}

/** A subscription of a customer of its own, with `count` notifications about it (TEST ones are about no customer). */
async function customerWithNotifications(count: number, environment: "Production" | "Sandbox" = "Production") {
	const tx = await appleEmulator.createSubscription({ account: crypto.randomUUID(), environment });
	const sent = [];
	for (let i = 0; i < count; i++) {
		sent.push(await appleEmulator.notify(tx.transactionId, "DID_CHANGE_RENEWAL_PREF", i % 2 ? "UPGRADE" : "DOWNGRADE"));
		await sleep(3);
	}
	return { tx, sent };
}

describe("Get Notification History", () => {
	it("pages through a customer's notifications, oldest first, with their send attempts", async () => {
		const start = Date.now() - 1000;
		const { tx, sent } = await customerWithNotifications(5);
		const [delivery] = (await emulator.outbox()).filter((d) => d.notificationId === sent[0]!.notificationUUID);
		await emulator.reportDelivery(delivery!.deliveryId, 500);
		await emulator.reportDelivery(delivery!.deliveryId, 200);

		const query = { startDate: start, endDate: Date.now() + 1000, transactionId: tx.transactionId };
		const pages = [];
		let paginationToken: string | undefined;
		do {
			const response = await history(query, paginationToken === undefined ? {} : { paginationToken });
			expect(response.status).toBe(200);
			const page = await json(response);
			pages.push(page);
			paginationToken = page.paginationToken;
			expect(paginationToken !== undefined).toBe(page.hasMore);
		} while (paginationToken !== undefined);

		expect(pages.map((p) => p.notificationHistory.length)).toEqual([2, 2, 1]);
		expect((await Promise.all(pages.map(notificationUUIDs))).flat()).toEqual(sent.map((s) => s.notificationUUID));
		expect(pages[0].notificationHistory[0].sendAttempts).toEqual([
			{ attemptDate: expect.any(Number), sendAttemptResult: "UNSUCCESSFUL_HTTP_RESPONSE_CODE" },
			{ attemptDate: expect.any(Number), sendAttemptResult: "SUCCESS" },
		]);
		expect(pages[0].notificationHistory[1].sendAttempts).toEqual([]);
		expect(await emulator.calls(tx.transactionId, "apple.notifications.history")).toBe(3);
	});

	it("keeps to [startDate, endDate), the notification type asked for, and the environment asked", async () => {
		const { tx, sent } = await customerWithNotifications(3);
		const [a, b, c] = sent.map((s) => s.payload.signedDate as number);
		const uuids = async (body: Record<string, unknown>, environment?: "sandbox") => notificationUUIDs(await json(await history(body, environment ? { environment } : {})));
		expect(await uuids({ startDate: b, endDate: c!, transactionId: tx.transactionId })).toEqual([sent[1]!.notificationUUID]);
		expect(await uuids({ startDate: a, endDate: b!, transactionId: tx.transactionId })).toEqual([sent[0]!.notificationUUID]);
		expect(await uuids({ startDate: a, endDate: c! + 1, transactionId: tx.transactionId }, "sandbox")).toEqual([]);
		const upgrades = await uuids({ startDate: a, endDate: c! + 1, notificationType: "DID_CHANGE_RENEWAL_PREF", notificationSubtype: "UPGRADE" });
		expect(upgrades).toContain(sent[1]!.notificationUUID);
		expect(upgrades).not.toContain(sent[0]!.notificationUUID);
	});

	it("answers Apple's errors for dates it refuses, a token of another query, and too many filters", async () => {
		const now = Date.now();
		const code = async (response: Response) => ({ status: response.status, ...(await json(response)) });
		expect(await code(await history({ startDate: now - 181 * DAY, endDate: now }))).toMatchObject({ status: 400, errorCode: 4000012 });
		expect(await code(await history({ startDate: now, endDate: now }))).toMatchObject({ status: 400, errorCode: 4000013 });
		expect(await code(await history({ endDate: now }))).toMatchObject({ status: 400, errorCode: 4000015 });
		expect(await code(await history({ startDate: now - DAY, endDate: now, notificationType: "REFUND", transactionId: "1000000000000001" }))).toMatchObject({ errorCode: 4000019 });
		expect(await code(await history({ startDate: now - DAY, endDate: now }, { paginationToken: "made-up" }))).toMatchObject({ errorCode: 4000014 });
		// 180 days is the limit itself.
		expect((await history({ startDate: now - 179 * DAY, endDate: now })).status).toBe(200);
	});

	it("authenticates as the other App Store Server API endpoints do, and takes injected faults", async () => {
		const { tx } = await customerWithNotifications(1);
		const body = { startDate: Date.now() - DAY, endDate: Date.now() + 1000, transactionId: tx.transactionId };
		const refused = await history(body, { token: null });
		expect(refused.status).toBe(401);
		expect(await refused.text()).toBe("");
		await appleEmulator.error({ match: tx.transactionId, errorCode: 4290000 });
		expect((await history(body)).status).toBe(429);
		await emulator.fault({ match: tx.transactionId, mode: "error", status: 503 });
		expect((await history(body)).status).toBe(503);
		expect((await history(body)).status).toBe(200);
	});
});

/** voidedpurchases.list as the service's service account (retrying once with a fresh token, as the service does). */
async function voided(query: Record<string, string | number>, account: GoogleServiceAccount | null = testApp(SAMPLE_APP.id).google!.serviceAccount, packageName: string = TEST_APPS.keyed.packageName) {
	const url = `${env.TEST_EMULATOR_URL}/google/androidpublisher/v3/applications/${packageName}/purchases/voidedpurchases?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))}`;
	for (let attempt = 0; ; attempt++) {
		const token = account === null ? undefined : await getAccessToken(account, 5_000);
		const response = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
		if (response.status !== 401 || attempt > 0 || token === undefined) return response;
		invalidateAccessToken(account!, token);
	}
}

/** Every page of a query. */
async function allVoided(query: Record<string, number>): Promise<{ purchaseToken: string; voidedTimeMillis: string }[]> {
	const items = [];
	let token: string | undefined;
	do {
		const page = await json(await voided(token === undefined ? query : { token }));
		items.push(...(page.voidedPurchases ?? []));
		token = page.tokenPagination?.nextPageToken;
	} while (token !== undefined);
	return items;
}

async function refunded(type: "product" | "subscription" = "product") {
	const purchase = await emulator.createGooglePurchase({ packageName: TEST_APPS.keyed.packageName, productId: type === "product" ? "premium_lifetime" : "premium_monthly", type });
	await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true, notify: false });
	await sleep(3);
	return purchase;
}

describe("voidedpurchases.list", () => {
	it("pages through the package's voided purchases, oldest first, in Google's shape", async () => {
		const startTime = Date.now() - 1000;
		const mine = [await refunded(), await refunded(), await refunded()];
		const items = [];
		let token: string | undefined;
		let pages = 0;
		do {
			const response = await voided(token === undefined ? { startTime, endTime: Date.now(), maxResults: 1000 } : { token });
			expect(response.status).toBe(200);
			const page = await json(response);
			pages += 1;
			expect(page.pageInfo).toMatchObject({ resultPerPage: 2 });
			expect(page.voidedPurchases.length).toBeLessThanOrEqual(2);
			items.push(...page.voidedPurchases);
			token = page.tokenPagination?.nextPageToken;
		} while (token !== undefined);
		expect(pages).toBeGreaterThanOrEqual(2);
		const ours = items.filter((v) => mine.some((p) => p.purchaseToken === v.purchaseToken));
		expect(ours.map((v) => v.purchaseToken)).toEqual(mine.map((p) => p.purchaseToken));
		expect(ours[0]).toEqual({
			kind: "androidpublisher#voidedPurchase",
			purchaseToken: mine[0]!.purchaseToken,
			purchaseTimeMillis: expect.stringMatching(/^\d+$/),
			voidedTimeMillis: expect.stringMatching(/^\d+$/),
			orderId: mine[0]!.orderId,
			voidedSource: 0,
			voidedReason: 1,
		});
	});

	it("keeps to [startTime, endTime] and lists subscriptions only with type=1", async () => {
		const startTime = Date.now() - 1000;
		const [first, second] = [await refunded(), await refunded("subscription")];
		const all = await allVoided({ startTime, type: 1 });
		const time = (token: string) => Number(all.find((v) => v.purchaseToken === token)?.voidedTimeMillis);
		const tokens = async (query: Record<string, number>) => (await allVoided(query)).map((v) => v.purchaseToken);
		const [t1, t2] = [time(first.purchaseToken), time(second.purchaseToken)];
		expect(t2).toBeGreaterThan(t1);
		expect(await tokens({ startTime: t1, endTime: t1, type: 1 })).toEqual([first.purchaseToken]);
		expect(await tokens({ startTime: t2, endTime: t2, type: 1 })).toEqual([second.purchaseToken]);
		expect(await tokens({ startTime: t2, endTime: t2 })).toEqual([]);
		expect(await tokens({ startTime: t1, endTime: t1, type: 0 })).toEqual([first.purchaseToken]);
	});

	it("refuses a startTime older than 30 days with Google's error envelope", async () => {
		const response = await voided({ startTime: Date.now() - 31 * DAY });
		expect(response.status).toBe(400);
		expect(await json(response)).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT", errors: [expect.objectContaining({ reason: "invalid" })] } });
	});

	it("authenticates as the other androidpublisher endpoints do, and is recorded and fault-injectable", async () => {
		expect((await voided({}, null)).status).toBe(401);
		expect((await voided({}, testApp(TEST_APPS.tokenCache.id).google!.serviceAccount)).status).toBe(403);
		await emulator.fault({ match: `${TEST_APPS.keyed.packageName}/purchases/voidedpurchases`, mode: "error", status: 503 });
		expect((await voided({})).status).toBe(503);
		expect(await emulator.calls(`${TEST_APPS.keyed.packageName}/purchases/voidedpurchases`, "google.voidedpurchases.list")).toBeGreaterThan(0);
	});
});
