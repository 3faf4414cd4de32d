import { Hono } from "hono";
import * as z from "zod";
import { accessTo, entitlementsOf, productsFor } from "../entitlements";
import { requireApiKey, requireApiOrVerifyKey, type ApiEnv } from "../http/auth";
import { userIdField } from "../http/fields";
import { answerBookmark, readSession } from "../http/session";
import { parseWith } from "../http/validate";
import { listUserPurchases, userPurchasesOf, type HistoryCursor } from "../ledger/history";
import { isEntitled } from "../purchase";

/**
 * What a user has, from D1 (through the Sessions API: see src/http/session.ts):
 *   GET /v1/users/{userId}/purchases               the history, newest first, for restoring on a new device
 *   GET /v1/users/{userId}/entitlements            every entitlement of the app, active or not, and what grants it
 *   GET /v1/users/{userId}/access/{entitlementOrProductId}   one yes/no, for backends (and apps, with their verify key)
 */

/** The opaque cursor handed out as next_cursor: base64 of [purchasedAt, transactionId]. */
const Cursor = z
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
	limit: z.coerce.number({ error: "must be a number from 1 to 100" }).int().min(1).max(100).default(25),
	cursor: Cursor.optional(),
});

const UserParams = z.object({ userId: userIdField });
const AccessParams = z.object({ userId: userIdField, id: z.string().min(1).max(256) });

export const userRoutes = new Hono<ApiEnv>()
	.get("/:userId/purchases", requireApiKey, async (c) => {
		const app = c.get("app");
		const { userId } = parseWith(UserParams, c.req.param());
		const query = parseWith(HistoryQuery, c.req.query());
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
	.get("/:userId/entitlements", requireApiKey, async (c) => {
		const app = c.get("app");
		const { userId } = parseWith(UserParams, c.req.param());
		const session = readSession(c);
		const products = [...new Set(Object.values(app.entitlements).flat())];
		const owned = await userPurchasesOf(session, app.id, userId, products);
		answerBookmark(c, session);
		return c.json({ user_id: userId, entitlements: entitlementsOf(app, owned) });
	})
	.get("/:userId/access/:id", requireApiOrVerifyKey, async (c) => {
		const app = c.get("app");
		const { userId, id } = parseWith(AccessParams, c.req.param());
		const session = readSession(c);
		const owned = await userPurchasesOf(session, app.id, userId, productsFor(app, id).products);
		answerBookmark(c, session);
		return c.json({ user_id: userId, id, ...accessTo(app, id, owned) });
	});

function encodeCursor(cursor: HistoryCursor): string {
	return btoa(JSON.stringify([cursor.purchasedAt, cursor.transactionId])).replaceAll("=", "");
}
