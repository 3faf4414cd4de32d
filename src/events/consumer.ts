import type { Config } from "../config/schema";
import { findApp } from "../config/load";
import { recordAttempt, recordDeliveries } from "../ledger/deliveries";
import { recordEvent } from "../ledger/event-log";
import type { Logger } from "../log";
import { matchesFilter, type ServiceEvent } from "./model";
import { deliver } from "./webhooks";

/**
 * The events queue's consumer (this Worker's `queue` handler). Every event is recorded (src/ledger/event-log.ts), if
 * its claim has not recorded it already with the purchase it reports. An event fans out to one delivery per webhook
 * endpoint whose filter takes it, each recorded in the delivery log and queued on its own, so each endpoint is
 * retried (with backoff, until a 2xx) without holding up the others. A delivery that keeps failing goes to the
 * dead-letter queue, whose consumer marks it dead in the log.
 */

/** `recorded`: the claim wrote the event to D1 with the purchase it reports (src/ledger/claim.ts), so only its fan-out is left. */
export type EventMessage = { kind: "event"; event: ServiceEvent; recorded?: boolean } | { kind: "webhook"; deliveryId: string; endpoint: number; event: ServiceEvent };

export async function consumeEvents(batch: MessageBatch<EventMessage>, env: Env, config: Config, log: Logger): Promise<void> {
	for (const message of batch.messages) {
		try {
			if (message.body.kind === "event") {
				// Kept (a purchase's timeline, the daily counts) before it fans out, unless its claim did; a retry records it once.
				if (!message.body.recorded) await recordEvent(env.DB, message.body.event);
				await fanOut(env, config, message.body.event);
				message.ack();
				continue;
			}
			const { deliveryId, endpoint: index, event } = message.body;
			const endpoint = findApp(config, event.appId)?.webhooks[index];
			if (!endpoint) {
				// The endpoint was removed from the configuration since: nothing left to deliver to.
				await recordAttempt(env.DB, deliveryId, { status: "dead", httpStatus: null, error: "the endpoint is no longer configured" });
				message.ack();
				continue;
			}
			const result = await deliver(endpoint, event);
			if (result.delivered) {
				await recordAttempt(env.DB, deliveryId, { status: "delivered", httpStatus: result.status, error: null });
				message.ack();
			} else {
				await recordAttempt(env.DB, deliveryId, { status: "failed", httpStatus: result.status, error: result.error });
				log.warn("webhook_failed", { delivery: deliveryId, attempt: message.attempts, status: result.status, error: result.error });
				message.retry({ delaySeconds: backoffSeconds(config, message.attempts) });
			}
		} catch (err) {
			log.error("event_message_failed", { kind: message.body.kind, attempt: message.attempts, error: err });
			message.retry({ delaySeconds: backoffSeconds(config, message.attempts) });
		}
	}
}

/** The dead-letter queue's consumer: a delivery given up on is marked dead, never dropped silently. */
export async function consumeDeadLetters(batch: MessageBatch<EventMessage>, env: Env, log: Logger): Promise<void> {
	for (const message of batch.messages) {
		if (message.body.kind === "webhook") {
			await recordAttempt(env.DB, message.body.deliveryId, { status: "dead", httpStatus: null, error: "gave up: the endpoint failed every retry (see the dead-letter queue)" });
		}
		log.error("event_dead_lettered", { kind: message.body.kind, event: message.body.event.id, type: message.body.event.type });
		message.ack();
	}
}

async function fanOut(env: Env, config: Config, event: ServiceEvent): Promise<void> {
	const app = findApp(config, event.appId);
	const targets = (app?.webhooks ?? []).map((endpoint, index) => ({ endpoint, index })).filter(({ endpoint }) => matchesFilter(endpoint.events, event.type));
	if (targets.length === 0) return;
	const payload = JSON.stringify(event);
	const deliveries = targets.map(({ endpoint, index }) => ({
		id: `${event.id}:${index}`,
		appId: event.appId,
		endpoint: endpoint.url,
		eventId: event.id,
		eventType: event.type,
		store: event.store,
		transactionId: event.purchase.transactionId,
		userId: event.userId,
		payload,
		index,
	}));
	await recordDeliveries(env.DB, deliveries);
	await env.EVENTS.sendBatch(deliveries.map((d) => ({ body: { kind: "webhook", deliveryId: d.id, endpoint: d.index, event } satisfies EventMessage, contentType: "json" as const })));
}

/** Seconds before retry `attempts` + 1: growing fourfold from `webhookRetrySeconds`, at most an hour. */
export function backoffSeconds(config: Config, attempts: number): number {
	return Math.min(3600, config.webhookRetrySeconds * 4 ** Math.max(0, attempts - 1));
}
