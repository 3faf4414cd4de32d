import { consoleRoutes } from "./console/routes";
import { createApp } from "./http/app";
import { requireApiKey } from "./http/auth";
import { healthRoutes } from "./routes/health";
import { notificationRoutes } from "./routes/notifications";
import { liveRoutes, liveTokenRoutes } from "./routes/live";
import { kpiRoutes } from "./routes/kpis";
import { lookupRoutes } from "./routes/lookups";
import { purchaseRoutes } from "./routes/purchases";
import { referenceRoutes } from "./routes/reference";
import { statsRoutes } from "./routes/stats";
import { supportRoutes } from "./routes/support";
import { userRoutes } from "./routes/users";
import { verifyRoutes } from "./routes/verify";
import { webhookRoutes } from "./routes/webhooks";

/** Every route the Worker serves, mounted once: src/index.ts serves it, /openapi.json describes it. */
export const app = createApp();
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
app.route("/v1/kpis", kpiRoutes);
app.route("/console", consoleRoutes);
app.route("/", referenceRoutes(app));
