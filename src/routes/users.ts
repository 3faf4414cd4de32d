import { Hono } from "hono";
import * as z from "zod";
import { accessTo, entitlementsOf, productsFor } from "../entitlements";
import { requireApiKey, requireApiOrVerifyKey, type ApiEnv } from "../http/auth";
import { userIdField } from "../http/fields";
import { answerBookmark, readSession } from "../http/session";
import { paramsOf, queryOf } from "../http/validate";
import { describe } from "../openapi/describe";
import { EntitlementSchema, HistoryEntrySchema } from "../openapi/schemas";
import { listUserPurchases, userPurchasesOf, type HistoryCursor } from "../ledger/history";
import { isEntitled } from "../purchase";

/**
 * What a user has, from D1 (through the Sessions API: see src/http/session.ts):
 *   GET /v1/users/{userId}/purchases               the history, newest first, for restoring on a new device
 *   GET /v1/users/{userId}/entitlements            every entitlement of the app, active or not, and what grants it
 *   GET /v1/users/{userId}/access/{entitlementOrProductId}   one yes/no, for backends (and apps, with their verify key)
 */

/** The opaque cursor handed out as next_cursor: base64 of [purchasedAt, transactionId]. */
export const Cursor = z
	.string()
	.max(1024)
	.transform((value, ctx): HistoryCursor => {
		try {
			const [purchasedAt, transactionId] = JSON.parse(atob(value)) as [unknown, unknown];
			if (typeof purchasedAt === "number" && Number.isSafeInteger(purchasedAt) && typeof transactionId === "string") return { purchasedAt, transactionId };
		} catch {
			// reported below
		}
		ctx.addIssue({ code: "custom", message: "not a cursor this API returned" });
		return z.NEVER;
	});

const HistoryQuery = z.object({
	limit: z.coerce.number({ error: "must be a number from 1 to 100" }).int().min(1).max(100).default(25).describe("Purchases per page, 1-100."),
	cursor: Cursor.optional().describe("The `next_cursor` of the previous page."),
});

const UserParams = z.object({ userId: userIdField.describe("Your user id, exactly as sent to /verify.") });
const AccessParams = z.object({ userId: userIdField, id: z.string().min(1).max(256).describe("An entitlement id or a product id.") });

export const userRoutes = new Hono<ApiEnv>()
	.get("/:userId/purchases", describe({
		summary: "A user's purchases, newest first",
		description: "From D1: what to restore on a new device. `entitled` says whether each gives access now. Page with `next_cursor` → `cursor`. Send a grant's `x-d1-bookmark` back to read your own write.",
		tags: ["Users"],
		security: ["apiKey"],
		responses: { 200: { description: "A page of the history", schema: z.object({ user_id: z.string(), purchases: z.array(HistoryEntrySchema), next_cursor: z.string().nullable() }) } },
		errors: [400, 401, 429, 503],
	}), requireApiKey, paramsOf(UserParams), queryOf(HistoryQuery), async (c) => {
		const app = c.get("app");
		const { userId } = c.req.valid("param");
		const query = c.req.valid("query");
		const session = readSession(c);
		const page = await listUserPurchases(session, app.id, userId, query.limit, query.cursor);
		answerBookmark(c, session);
		const now = Date.now();
		return c.json({
			user_id: userId,
			purchases: page.entries.map((entry) => ({ ...entry, entitled: isEntitled(entry, now) })),
			next_cursor: page.next ? encodeCursor(page.next) : null,
		});
	})
	.get("/:userId/entitlements", describe({
		summary: "Every entitlement of the app, active or not, and what grants it",
		description: "From the app's `entitlements` (APPS_CONFIG), in one indexed D1 query. An entitlement is granted by the purchase that lasts longest.",
		tags: ["Users"],
		security: ["apiKey"],
		responses: { 200: { description: "The user's entitlements", schema: z.object({ user_id: z.string(), entitlements: z.array(EntitlementSchema) }) } },
		errors: [400, 401, 429, 503],
	}), requireApiKey, paramsOf(UserParams), async (c) => {
		const app = c.get("app");
		const { userId } = c.req.valid("param");
		const session = readSession(c);
		const products = [...new Set(Object.values(app.entitlements).flat())];
		const owned = await userPurchasesOf(session, app.id, userId, products);
		answerBookmark(c, session);
		return c.json({ user_id: userId, entitlements: entitlementsOf(app, owned) });
	})
	.get("/:userId/access/:id", describe({
		summary: "One yes/no: does the user have this entitlement or product now?",
		description: "Takes the API key, or the app's verify key (`?key=` or `X-Verify-Key`) with `?appId=`, so a wrapper app can ask for its user.",
		tags: ["Users"],
		security: ["apiKey", "verifyKey", "verifyKeyHeader"],
		responses: {
			200: {
				description: "The answer",
				schema: z.object({ user_id: z.string(), id: z.string(), access: z.boolean(), expiresAt: z.number().int().nullable(), reason: z.string(), entitlement: z.string().nullable(), productId: z.string().nullable() }),
				example: { user_id: "user123", id: "premium", access: true, expiresAt: 1766392000000, reason: "active", entitlement: "premium", productId: "premium_monthly" },
			},
		},
		errors: [400, 401, 429, 503],
	}), requireApiOrVerifyKey, paramsOf(AccessParams), async (c) => {
		const app = c.get("app");
		const { userId, id } = c.req.valid("param");
		const session = readSession(c);
		const owned = await userPurchasesOf(session, app.id, userId, productsFor(app, id).products);
		answerBookmark(c, session);
		return c.json({ user_id: userId, id, ...accessTo(app, id, owned) });
	});

export function encodeCursor(cursor: HistoryCursor): string {
	return btoa(JSON.stringify([cursor.purchasedAt, cursor.transactionId])).replaceAll("=", "");
}
