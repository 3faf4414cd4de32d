import { createApp } from "./http/app";
import { healthRoutes } from "./routes/health";
import { purchaseRoutes } from "./routes/purchases";
import { userRoutes } from "./routes/users";
import { verifyRoutes } from "./routes/verify";

export { TransactionClaim } from "./ledger/claim";

const app = createApp();
app.route("/health", healthRoutes);
app.route("/verify", verifyRoutes);
app.route("/v1/purchases", purchaseRoutes);
app.route("/v1/users", userRoutes);

export default app satisfies ExportedHandler<Env>;
