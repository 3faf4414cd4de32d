import { Hono } from "hono";
import * as z from "zod";
import { appForApiKey } from "../http/auth";
import type { AppEnv } from "../http/app";
import { ApiError } from "../http/errors";
import { parseWith } from "../http/validate";
import { listUserPurchases, type HistoryCursor } from "../ledger/history";
import { isEntitled } from "../purchase";

/** GET /v1/users/{userId}/purchases: a user's history from D1, newest first, for restoring on a new device. */

const Query = z.object({
	limit: z.coerce.number().int().min(1).max(100).default(25),
	cursor: z.string().max(1024).optional(),
});

export const userRoutes = new Hono<AppEnv>().get("/:userId/purchases", async (c) => {
	const app = await appForApiKey(c.get("config"), c.req.header("authorization"));
	const userId = c.req.param("userId");
	if (userId.length > 256) throw new ApiError("invalid_request", "userId: at most 256 characters", { field: "userId" });
	const query = parseWith(Query, c.req.query());
	const page = await listUserPurchases(c.env.DB, app.id, userId, query.limit, query.cursor ? decodeCursor(query.cursor) : undefined);
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

function decodeCursor(value: string): HistoryCursor {
	try {
		const [purchasedAt, transactionId] = JSON.parse(atob(value)) as [unknown, unknown];
		if (typeof purchasedAt === "number" && typeof transactionId === "string") return { purchasedAt, transactionId };
	} catch {
		// fall through
	}
	throw new ApiError("invalid_request", "cursor: not a cursor this API returned", { field: "cursor" });
}
