import { Hono } from "hono";
import * as z from "zod";
import { parseAdminBody } from "./admin-body";
import { configOf } from "./config";
import { allNotifications, notificationByDelivery, pendingDeliveries, recordAttempt, type StoreNotification } from "./notifications";

/**
 * The emulator's notifications and their outbox (notifications.ts), mounted at /_emulator. Not part of any store.
 *   GET  /notifications?store=&transaction=&type=  every notification made, newest last, with its delivery attempts
 *   GET  /outbox                                   the deliveries due: every notification sent and not yet delivered
 *                                                  (an earlier failed attempt included), oldest first, each with the
 *                                                  exact body and headers to POST; reading marks nothing
 *   POST /outbox/:deliveryId {status}              the status the receiver answered: a 2xx delivers it, anything else
 *                                                  keeps it for redelivery (same id, same body)
 */
export const notificationAdmin = new Hono();

function summary(n: StoreNotification) {
	return {
		id: n.id,
		store: n.store,
		type: n.type,
		subtype: n.subtype,
		transactionId: n.transactionId,
		createdAt: n.createdAt,
		sent: n.sent,
		deliveries: n.deliveries,
		delivered: n.delivered,
	};
}

notificationAdmin.get("/notifications", (c) => {
	const { store, transaction, type } = c.req.query();
	const found = allNotifications().filter(
		(n) => (store === undefined || n.store === store) && (transaction === undefined || n.transactionId === transaction) && (type === undefined || n.type === type),
	);
	return c.json({ notifications: found.map(summary) });
});

notificationAdmin.get("/outbox", async (c) => {
	const deliveries = [];
	for (const n of pendingDeliveries()) {
		deliveries.push({
			deliveryId: n.deliveryId,
			notificationId: n.id,
			store: n.store,
			type: n.type,
			subtype: n.subtype,
			transactionId: n.transactionId,
			attempts: n.deliveries.length,
			url: n.url,
			method: "POST",
			// Google's: a fresh OIDC token for this delivery.
			headers: await n.headers(),
			body: n.body,
		});
	}
	return c.json({ mode: configOf(c).notify.mode, deliveries });
});

const STATUS = "must be the HTTP status the receiver answered (100-599), or 0 for no answer";
const Report = z.object({ status: z.number({ error: STATUS }).int({ error: STATUS }).min(0, { error: STATUS }).max(599, { error: STATUS }) });

notificationAdmin.post("/outbox/:deliveryId", async (c) => {
	const n = notificationByDelivery(c.req.param("deliveryId"));
	if (!n || !n.sent) return c.json({ error: "no such delivery" }, 404);
	if (n.delivered) return c.json({ error: "already delivered", ...summary(n) }, 409);
	const body = await parseAdminBody(c, Report);
	if (!body.ok) return body.response;
	recordAttempt(n, body.value.status);
	return c.json(summary(n));
});
