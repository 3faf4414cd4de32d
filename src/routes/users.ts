import { Hono } from "hono";
import * as z from "zod";
import { requireApiKey, type ApiEnv } from "../http/auth";
import { userIdField } from "../http/fields";
import { parseWith } from "../http/validate";
import { listUserPurchases, type HistoryCursor } from "../ledger/history";
import { isEntitled } from "../purchase";

/** GET /v1/users/{userId}/purchases: a user's history from D1, newest first, for restoring on a new device. */

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

const Query = z.object({
	limit: z.coerce.number({ error: "must be a number from 1 to 100" }).int().min(1).max(100).default(25),
	cursor: Cursor.optional(),
});

const Params = z.object({ userId: userIdField });

export const userRoutes = new Hono<ApiEnv>().use(requireApiKey).get("/:userId/purchases", async (c) => {
	const app = c.get("app");
	const { userId } = parseWith(Params, c.req.param());
	const query = parseWith(Query, c.req.query());
	const page = await listUserPurchases(c.env.DB, app.id, userId, query.limit, query.cursor);
	const now = Date.now();
	return c.json({
		user_id: userId,
		purchases: page.entries.map((entry) => ({ ...entry, entitled: isEntitled(entry, now) })),
		next_cursor: page.next ? encodeCursor(page.next) : null,
	});
});

function encodeCursor(cursor: HistoryCursor): string {
	return btoa(JSON.stringify([cursor.purchasedAt, cursor.transactionId])).replaceAll("=", "");
}
