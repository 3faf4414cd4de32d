import type { Context } from "hono";
import { configOf, type RegisteredServiceAccount } from "./config";
import { authenticate } from "./google-auth";
import type { GooglePurchase } from "./google-purchases";

/**
 * purchases.voidedpurchases.list
 * (https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.voidedpurchases/list):
 *   GET {googlePlay}/androidpublisher/v3/applications/{packageName}/purchases/voidedpurchases
 *       ?startTime=&endTime=&type=&maxResults=&token=
 * The package's voided purchases with voidedTimeMillis in [startTime, endTime], oldest first; subscriptions only
 * with type=1 (0, the default, lists one-time products only). startTime defaults to 30 days ago and may not be
 * older; endTime defaults to now (a later one reads as now). A page holds maxResults (default 1000), at most
 * google.voidedPageSize; a page token continues the query it came from (its times and type win, as Google's do).
 * Millisecond values are strings and empty lists are left out, as in Google's JSON.
 */

export interface VoidedRecord {
	seq: number;
	packageName: string;
	purchaseToken: string;
	orderId: string;
	purchaseTimeMillis: number;
	voidedTimeMillis: number;
	/** 0 user, 1 developer, 2 Google */
	voidedSource: number;
	/** 0 other, 1 remorse, 2 not received, 3 defective, 4 accidental purchase, 5 fraud, 6 friendly fraud, 7 chargeback */
	voidedReason: number;
	subscription: boolean;
}

const voided: VoidedRecord[] = [];
let sequence = 0;
const RETENTION_MS = 30 * 24 * 3600 * 1000;

/** Voids a purchase now: it joins the list. */
export function addVoided(p: GooglePurchase, voidedSource: number, voidedReason: number, now = Date.now()): VoidedRecord {
	sequence += 1;
	const record: VoidedRecord = {
		seq: sequence,
		packageName: p.packageName,
		purchaseToken: p.token,
		orderId: p.orderId,
		purchaseTimeMillis: p.purchaseTime,
		voidedTimeMillis: now,
		voidedSource,
		voidedReason,
		subscription: p.type === "subscription",
	};
	voided.push(record);
	return record;
}

interface Query {
	packageName: string;
	startTime: number;
	endTime: number;
	includeSubscriptions: boolean;
}

const pages = new Map<string, { query: Query; afterSeq: number; startIndex: number }>();

type ErrorAnswer = (c: Context, status: 400 | 401 | 403, message?: string) => Response;

function whole(value: string | undefined, fallback: number): number | undefined {
	if (value === undefined || value === "") return fallback;
	return /^-?\d+$/.test(value) ? Number(value) : undefined;
}

export function listVoided(accounts: (c: Context) => RegisteredServiceAccount[], googleError: ErrorAnswer) {
	return (c: Context) => {
		const packageName = c.req.param("packageName") ?? "";
		const account = authenticate(c.req.header("authorization"), accounts(c));
		if (!account) return googleError(c, 401);
		if (!account.packages.includes(packageName)) return googleError(c, 403);
		const now = Date.now();
		const maxResults = whole(c.req.query("maxResults") ?? c.req.query("pageSelection.maxResults"), 1000);
		if (maxResults === undefined || maxResults < 1) return googleError(c, 400, "Invalid maxResults.");
		const token = c.req.query("token") ?? c.req.query("pageSelection.token");
		let query: Query;
		let afterSeq = 0;
		let startIndex = 0;
		if (token !== undefined && token !== "") {
			const page = pages.get(token);
			if (!page || page.query.packageName !== packageName) return googleError(c, 400, "Invalid pagination token.");
			({ query, afterSeq, startIndex } = page);
		} else {
			const startTime = whole(c.req.query("startTime"), now - RETENTION_MS);
			const endTime = whole(c.req.query("endTime"), now);
			const type = whole(c.req.query("type"), 0);
			if (startTime === undefined) return googleError(c, 400, "Invalid startTime.");
			if (endTime === undefined) return googleError(c, 400, "Invalid endTime.");
			if (type !== 0 && type !== 1) return googleError(c, 400, "Invalid type: must be 0 or 1.");
			if (startTime < now - RETENTION_MS) return googleError(c, 400, "startTime cannot be older than 30 days.");
			if (startTime > endTime) return googleError(c, 400, "startTime must not be later than endTime.");
			query = { packageName, startTime, endTime: Math.min(endTime, now), includeSubscriptions: type === 1 };
		}
		const all = voided.filter(
			(v) =>
				v.packageName === query.packageName &&
				(query.includeSubscriptions || !v.subscription) &&
				v.voidedTimeMillis >= query.startTime &&
				v.voidedTimeMillis <= query.endTime,
		);
		const found = all.filter((v) => v.seq > afterSeq);
		const size = Math.min(maxResults, configOf(c).google.voidedPageSize);
		const page = found.slice(0, size);
		let nextPageToken: string | undefined;
		if (found.length > page.length) {
			nextPageToken = crypto.randomUUID().replaceAll("-", "");
			pages.set(nextPageToken, { query, afterSeq: page.at(-1)!.seq, startIndex: startIndex + page.length });
		}
		return c.json({
			pageInfo: { totalResults: all.length, resultPerPage: size, startIndex },
			...(nextPageToken === undefined ? {} : { tokenPagination: { nextPageToken } }),
			...(page.length === 0
				? {}
				: {
						voidedPurchases: page.map((v) => ({
							kind: "androidpublisher#voidedPurchase",
							purchaseToken: v.purchaseToken,
							purchaseTimeMillis: String(v.purchaseTimeMillis),
							voidedTimeMillis: String(v.voidedTimeMillis),
							orderId: v.orderId,
							voidedSource: v.voidedSource,
							voidedReason: v.voidedReason,
						})),
					}),
		});
	};
}
