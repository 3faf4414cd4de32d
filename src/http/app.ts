import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { Misconfigured } from "../answers";
import { loadConfig } from "../config/load";
import type { Config } from "../config/schema";
import { ApiError, errorBody, statusFor, toApiError } from "./errors";
import { createLogger, type Logger } from "../log";

export interface AppEnv {
	Bindings: Env;
	Variables: { requestId: string; log: Logger; config: Config };
}

/** Paths that answer without a usable APPS_CONFIG. */
const UNCONFIGURED_PATHS = /^\/(health|openapi\.json|docs)$/;

/** Receipts are the largest thing anyone sends; a legacy receipt with years of renewals stays well below this. */
export const MAX_BODY_BYTES = 512 * 1024;

/**
 * The one place that sets up request ids, JSON logs, the body limit, configuration and the error shape.
 * Route groups are mounted on what this returns.
 */
export function createApp(): Hono<AppEnv> {
	const app = new Hono<AppEnv>();

	app.use("*", async (c, next) => {
		const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
		c.set("requestId", requestId);
		c.set("log", createLogger(requestId));
		const started = Date.now();
		await next();
		c.header("x-request-id", requestId);
		c.get("log").info("request", { method: c.req.method, path: new URL(c.req.url).pathname, status: c.res.status, ms: Date.now() - started });
	});

	app.use(
		"*",
		bodyLimit({
			maxSize: MAX_BODY_BYTES,
			onError: () => {
				throw new ApiError("payload_too_large", `the request body is larger than ${MAX_BODY_BYTES} bytes`);
			},
		}),
	);

	// Configuration is parsed once per isolate; a bad one answers every request (but /health) with the fields to fix.
	app.use("*", async (c, next) => {
		const loaded = loadConfig(c.env);
		if (!loaded.ok) {
			if (loaded.fresh) c.get("log").error("config_invalid", { problems: loaded.error.problems });
			// What needs no configuration still answers: health says what is wrong, the API description is the same for all.
			if (UNCONFIGURED_PATHS.test(new URL(c.req.url).pathname)) return next();
			throw new Misconfigured(loaded.error.message);
		}
		c.set("config", loaded.config);
		await next();
	});

	app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, c.get("requestId")), 404));

	app.onError((thrown, c) => {
		const requestId = c.get("requestId") ?? crypto.randomUUID();
		const log = c.get("log") ?? createLogger(requestId);
		const err = toApiError(thrown);
		if (err instanceof ApiError) {
			if (err.options.detail !== undefined || err.status >= 500) log.warn("api_error", { code: err.code, message: err.message, detail: err.options.detail });
			if (err.options.retryAfter) c.header("retry-after", String(err.options.retryAfter));
			return c.json({ ...errorBody(err.code, err.message, requestId, err.options.field), ...err.options.extra }, err.status);
		}
		if (err instanceof HTTPException) {
			const status = err.status;
			const code = status === 404 ? "not_found" : status === 405 ? "method_not_allowed" : status === 401 ? "unauthorized" : status === 413 ? "payload_too_large" : status === 429 ? "rate_limited" : "invalid_request";
			return c.json(errorBody(code, err.message || "bad request", requestId), statusFor(code));
		}
		log.error("unhandled_error", { error: err, stack: err instanceof Error ? err.stack : undefined });
		return c.json(errorBody("internal", "internal error; it has been logged with this request id", requestId), 500);
	});

	return app;
}
