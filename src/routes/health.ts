import { Hono } from "hono";
import type { AppEnv } from "../http/app";
import { loadConfig } from "../config/load";

/** GET /health: up, and whether the configuration is usable (without saying more than which fields are wrong). */
export const healthRoutes = new Hono<AppEnv>().get("/", (c) => {
	const loaded = loadConfig(c.env);
	if (!loaded.ok) return c.json({ status: "misconfigured", problems: loaded.error.problems }, 503);
	return c.json({ status: "ok", apps: loaded.config.apps.length });
});
