import { Hono } from "hono";
import * as z from "zod";
import type { ApiEnv } from "../http/auth";
import { ApiError } from "../http/errors";
import { answerBookmark, readSession } from "../http/session";
import { paramsOf, queryOf } from "../http/validate";
import { describe } from "../openapi/describe";
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

const DeliveryParams = z.object({ id: z.string().min(1).max(256).describe("The delivery's id, from the log.") });

export const webhookRoutes = new Hono<ApiEnv>()
	.get("/deliveries", describe({
		summary: "The webhook delivery log",
		description: "Every event sent to each endpoint: attempts, last status, last error. Filter by status, event type, transaction; page with `next_before` → `before`.",
		tags: ["Events"],
		security: ["apiKey"],
		responses: {
			200: {
				description: "Deliveries, newest first",
				example: { deliveries: [{ id: "3f0c8a52-…:0", appId: "1234", endpoint: "https://example.com/hooks", eventId: "3f0c8a52-…", eventType: "purchase.granted", store: "google_play", transactionId: "<token>", userId: "user123", status: "delivered", attempts: 1, lastStatus: 204, lastError: null, createdAt: 1763800000000, updatedAt: 1763800000500, deliveredAt: 1763800000500 }], next_before: null },
			},
		},
		errors: [400, 401, 429, 503],
	}), queryOf(Query), async (c) => {
		const query = c.req.valid("query");
		const session = readSession(c);
		const deliveries = await listDeliveries(session, c.get("app").id, { status: query.status, eventType: query.type, transactionId: query.transactionId, before: query.before, limit: query.limit });
		answerBookmark(c, session);
		return c.json({ deliveries, next_before: deliveries.length === query.limit ? deliveries.at(-1)!.createdAt : null });
	})
	.post("/deliveries/:id/redeliver", describe({
		summary: "Send a delivery again (the same webhook-id)",
		tags: ["Events"],
		security: ["apiKey"],
		responses: { 202: { description: "Queued", example: { redelivering: true, id: "3f0c8a52-…:0" } } },
		errors: [401, 404, 429, 503],
	}), paramsOf(DeliveryParams), async (c) => {
		const { id } = c.req.valid("param");
		const delivery = await findDelivery(c.env.DB, id);
		if (!delivery || delivery.appId !== c.get("app").id) throw new ApiError("not_found", "no such delivery in this app", { field: "id" });
		const endpoint = Number(id.slice(id.lastIndexOf(":") + 1));
		await resetDelivery(c.env.DB, id);
		await c.env.EVENTS.send({ kind: "webhook", deliveryId: id, endpoint, event: JSON.parse(delivery.payload) as ServiceEvent } satisfies EventMessage, { contentType: "json" });
		return c.json({ redelivering: true, id }, 202);
	});
