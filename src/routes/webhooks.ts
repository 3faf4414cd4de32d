import { Hono } from "hono";
import * as z from "zod";
import type { ApiEnv } from "../http/auth";
import { ApiError } from "../http/errors";
import { answerBookmark, readSession } from "../http/session";
import { parseWith } from "../http/validate";
import { findDelivery, listDeliveries, resetDelivery } from "../ledger/deliveries";
import type { EventMessage } from "../events/consumer";
import type { ServiceEvent } from "../events/model";

/**
 * The webhook delivery log (API key):
 *   GET  /v1/webhooks/deliveries?status=&type=&transactionId=&limit=&before=   attempts, status codes, last error
 *   POST /v1/webhooks/deliveries/{id}/redeliver                                 send it again (the same webhook-id)
 */

const Query = z.object({
	status: z.enum(["pending", "delivered", "failed", "dead"], { error: "must be pending, delivered, failed or dead" }).optional(),
	type: z.string().max(64).optional(),
	transactionId: z.string().max(1024).optional(),
	before: z.coerce.number().int().positive().optional(),
	limit: z.coerce.number().int().min(1).max(100).default(25),
});

export const webhookRoutes = new Hono<ApiEnv>()
	.get("/deliveries", async (c) => {
		const query = parseWith(Query, c.req.query());
		const session = readSession(c);
		const deliveries = await listDeliveries(session, c.get("app").id, { status: query.status, eventType: query.type, transactionId: query.transactionId, before: query.before, limit: query.limit });
		answerBookmark(c, session);
		return c.json({ deliveries, next_before: deliveries.length === query.limit ? deliveries.at(-1)!.createdAt : null });
	})
	.post("/deliveries/:id/redeliver", async (c) => {
		const id = c.req.param("id");
		const delivery = await findDelivery(c.env.DB, id);
		if (!delivery || delivery.appId !== c.get("app").id) throw new ApiError("not_found", "no such delivery in this app", { field: "id" });
		const endpoint = Number(id.slice(id.lastIndexOf(":") + 1));
		await resetDelivery(c.env.DB, id);
		await c.env.EVENTS.send({ kind: "webhook", deliveryId: id, endpoint, event: JSON.parse(delivery.payload) as ServiceEvent } satisfies EventMessage, { contentType: "json" });
		return c.json({ redelivering: true, id }, 202);
	});
