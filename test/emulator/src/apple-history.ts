import type { Context } from "hono";
import * as z from "zod";
import { authenticateApple } from "./apple-auth";
import { appleError, injectedApiError } from "./apple-errors";
import { APPLE_NOTIFICATION_SUBTYPES, APPLE_NOTIFICATION_TYPES } from "./apple-notifications";
import { appleTransactions } from "./apple-transactions";
import { configOf } from "./config";
import { allNotifications, isSuccess, type StoreNotification } from "./notifications";

/**
 * Get Notification History (https://developer.apple.com/documentation/appstoreserverapi/get-notification-history):
 *   POST {environment base}/inApps/v1/notifications/history[?paginationToken=]
 *   {startDate, endDate, notificationType?, notificationSubtype?, transactionId?, onlyFailures?}
 * The notifications the emulator made for the token's app (bid) in this environment, sent or not, whose signedDate
 * is in [startDate, endDate), oldest first, apple.historyPageSize a page. transactionId limits it to that
 * transaction's customer, as Apple does. Apple keeps 180 days: an earlier startDate is refused (4000012).
 */

const DAY_MS = 24 * 3600 * 1000;
const RETENTION_MS = 180 * DAY_MS;

const HistoryRequest = z.object({
	startDate: z.unknown(),
	endDate: z.unknown(),
	notificationType: z.unknown().optional(),
	notificationSubtype: z.unknown().optional(),
	transactionId: z.unknown().optional(),
	onlyFailures: z.unknown().optional(),
});

interface Query {
	environment: string;
	bundleId: string;
	startDate: number;
	endDate: number;
	notificationType?: string;
	notificationSubtype?: string;
	transactionId?: string;
	onlyFailures: boolean;
}

/** Page tokens, bound to the query they continue (Apple refuses one sent with another query: 4000014). */
const pages = new Map<string, { query: string; afterSeq: number }>();

const isMillis = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value >= 0;

/** The request's query, or Apple's error for it. */
function readQuery(c: Context, environment: string, bundleId: string, raw: unknown, now: number): Query | Response {
	const parsed = HistoryRequest.safeParse(raw);
	if (!parsed.success) return appleError(c, 4000015);
	const body = parsed.data;
	if (!isMillis(body.startDate)) return appleError(c, 4000015);
	if (!isMillis(body.endDate)) return appleError(c, 4000016);
	if (body.startDate < now - RETENTION_MS) return appleError(c, 4000012);
	if (body.startDate >= body.endDate) return appleError(c, 4000013);
	const type = body.notificationType;
	const subtype = body.notificationSubtype;
	if (type !== undefined && !(APPLE_NOTIFICATION_TYPES as readonly unknown[]).includes(type)) return appleError(c, 4000018);
	if (subtype !== undefined && !(APPLE_NOTIFICATION_SUBTYPES as readonly unknown[]).includes(subtype)) return appleError(c, 4000018);
	if (body.transactionId !== undefined && (typeof body.transactionId !== "string" || !/^\d+$/.test(body.transactionId))) return appleError(c, 4000006);
	// Apple takes a transaction id or a notification type, not both.
	if (body.transactionId !== undefined && type !== undefined) return appleError(c, 4000019);
	return {
		environment,
		bundleId,
		startDate: body.startDate,
		endDate: body.endDate,
		...(type === undefined ? {} : { notificationType: type as string }),
		...(subtype === undefined ? {} : { notificationSubtype: subtype as string }),
		...(body.transactionId === undefined ? {} : { transactionId: body.transactionId as string }),
		onlyFailures: body.onlyFailures === true,
	};
}

function matches(n: StoreNotification, q: Query): boolean {
	if (n.store !== "app_store" || n.scope.environment !== q.environment || n.scope.bundleId !== q.bundleId) return false;
	if (n.createdAt < q.startDate || n.createdAt >= q.endDate) return false;
	if (q.notificationType !== undefined && n.type !== q.notificationType) return false;
	if (q.notificationSubtype !== undefined && n.subtype !== q.notificationSubtype) return false;
	if (q.onlyFailures && n.deliveries.some((d) => isSuccess(d.status))) return false;
	if (q.transactionId !== undefined) {
		const customer = appleTransactions.get(q.transactionId)?.account;
		if (customer === undefined || n.scope.account !== customer) return false;
	}
	return true;
}

/** sendAttemptResult (https://developer.apple.com/documentation/appstoreserverapi/sendattemptresult). */
function sendAttemptResult(status: number): string {
	if (isSuccess(status)) return "SUCCESS";
	return status === 0 ? "NO_RESPONSE" : "UNSUCCESSFUL_HTTP_RESPONSE_CODE";
}

/** Path plus the transactionId asked about, so faults can be aimed at one customer's history. */
export async function subjectOfHistoryRequest(c: Context): Promise<string> {
	const body = (await c.req.raw.clone().json().catch(() => undefined)) as { transactionId?: unknown } | undefined;
	const transactionId = typeof body?.transactionId === "string" ? body.transactionId : "";
	return `${new URL(c.req.url).pathname} ${transactionId}`.trim();
}

export function notificationHistory(environment: "Production" | "Sandbox") {
	return async (c: Context) => {
		const config = configOf(c).apple;
		const caller = await authenticateApple(c.req.header("authorization"), config);
		if ("refused" in caller) {
			console.log(`store emulator: App Store Server API 401 (${caller.refused})`);
			return c.body(null, 401);
		}
		const injected = injectedApiError(c, await subjectOfHistoryRequest(c));
		if (injected) return injected;
		const raw = await c.req.json().catch(() => undefined);
		const query = readQuery(c, environment, caller.bundleId, raw, Date.now());
		if (query instanceof Response) return query;
		const key = JSON.stringify(query);
		const token = c.req.query("paginationToken");
		let afterSeq = 0;
		if (token !== undefined) {
			const page = pages.get(token);
			if (!page || page.query !== key) return appleError(c, 4000014);
			afterSeq = page.afterSeq;
		}
		const found = allNotifications().filter((n) => n.seq > afterSeq && matches(n, query));
		const page = found.slice(0, config.historyPageSize);
		const hasMore = found.length > page.length;
		let paginationToken: string | undefined;
		if (hasMore) {
			paginationToken = crypto.randomUUID();
			pages.set(paginationToken, { query: key, afterSeq: page.at(-1)!.seq });
		}
		return c.json({
			notificationHistory: page.map((n) => ({
				signedPayload: n.signedPayload,
				sendAttempts: n.deliveries.map((d) => ({ attemptDate: d.at, sendAttemptResult: sendAttemptResult(d.status) })),
			})),
			hasMore,
			...(paginationToken === undefined ? {} : { paginationToken }),
		});
	};
}
