import { app } from "./app";
import { loadConfig } from "./config/load";
import { catchUp } from "./lifecycle/catch-up";
import { createLogger } from "./log";
import { consumeDeadLetters, consumeEvents, type EventMessage } from "./events/consumer";

export { UserChannel } from "./events/channel";
export { TransactionClaim } from "./ledger/claim";
export { UpstreamLimiter } from "./quota/limiter";

export default {
	fetch: app.fetch,
	/** The Cron Trigger (wrangler.toml [triggers]): catch up on what the stores' notifications missed. */
	async scheduled(controller, env) {
		const log = createLogger(`cron:${controller.cron}:${controller.scheduledTime}`);
		const loaded = loadConfig(env);
		if (!loaded.ok) {
			log.error("config_invalid", { problems: loaded.error.problems });
			return;
		}
		await catchUp(env, loaded.config, log, controller.scheduledTime);
	},
	/** The events queue (webhook fan-out and delivery) and its dead-letter queue. */
	async queue(batch: MessageBatch<EventMessage>, env) {
		const log = createLogger(`queue:${batch.queue}`);
		if (batch.queue.endsWith("-dlq")) return consumeDeadLetters(batch, env, log);
		const loaded = loadConfig(env);
		if (!loaded.ok) {
			// Nothing can be delivered without the configuration: let the queue hold the messages.
			log.error("config_invalid", { problems: loaded.error.problems });
			batch.retryAll({ delaySeconds: 60 });
			return;
		}
		await consumeEvents(batch, env, loaded.config, log);
	},
} satisfies ExportedHandler<Env, EventMessage>;
