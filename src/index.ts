import { loadConfig } from "./config/load";
import { createApp } from "./http/app";
import { requireApiKey } from "./http/auth";
import { catchUp } from "./lifecycle/catch-up";
import { createLogger } from "./log";
import { healthRoutes } from "./routes/health";
import { notificationRoutes } from "./routes/notifications";
import { liveRoutes, liveTokenRoutes } from "./routes/live";
import { lookupRoutes } from "./routes/lookups";
import { purchaseRoutes } from "./routes/purchases";
import { statsRoutes } from "./routes/stats";
import { supportRoutes } from "./routes/support";
import { userRoutes } from "./routes/users";
import { verifyRoutes } from "./routes/verify";
import { webhookRoutes } from "./routes/webhooks";
import { consumeDeadLetters, consumeEvents, type EventMessage } from "./events/consumer";

export { UserChannel } from "./events/channel";
export { TransactionClaim } from "./ledger/claim";
export { UpstreamLimiter } from "./quota/limiter";

const app = createApp();
app.route("/health", healthRoutes);
app.route("/verify", verifyRoutes);
// Every /v1/purchases route takes the app's API key (once: the groups below share it).
app.use("/v1/purchases/*", requireApiKey);
app.route("/v1/purchases", purchaseRoutes);
app.route("/v1/purchases", supportRoutes);
app.route("/v1/purchases", lookupRoutes);
app.route("/v1/users", userRoutes);
app.route("/v1/users", liveTokenRoutes);
app.use("/v1/webhooks/*", requireApiKey);
app.route("/v1/webhooks", webhookRoutes);
app.use("/v1/stats/*", requireApiKey);
app.route("/v1/stats", statsRoutes);
app.route("/v1/live", liveRoutes);
app.route("/v1/notifications", notificationRoutes);

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
