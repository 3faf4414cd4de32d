import { loadConfig } from "./config/load";
import { createApp } from "./http/app";
import { catchUp } from "./lifecycle/catch-up";
import { createLogger } from "./log";
import { healthRoutes } from "./routes/health";
import { notificationRoutes } from "./routes/notifications";
import { purchaseRoutes } from "./routes/purchases";
import { userRoutes } from "./routes/users";
import { verifyRoutes } from "./routes/verify";

export { TransactionClaim } from "./ledger/claim";

const app = createApp();
app.route("/health", healthRoutes);
app.route("/verify", verifyRoutes);
app.route("/v1/purchases", purchaseRoutes);
app.route("/v1/users", userRoutes);
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
} satisfies ExportedHandler<Env>;
