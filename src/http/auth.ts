import type { MiddlewareHandler } from "hono";
import { findApp } from "../config/load";
import type { AppConfig, Config } from "../config/schema";
import type { AppEnv } from "./app";
import { ApiError } from "./errors";
import { enforceRateLimit } from "./rate-limit";
import { findSecret, indexOfSecret } from "./secrets";

/** The token of an `Authorization: Bearer <token>` header, if that is what the header holds. */
export function bearerToken(authorization: string | undefined): string | undefined {
	return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
}

/** Route groups behind the server API key: the app the key names is in the context. */
export interface ApiEnv extends AppEnv {
	/** `apiKeyId` names the key for audit trails ("api-key:<app>:<position>"), never the key itself; "verify-key" for an app's verify key. */
	Variables: AppEnv["Variables"] & { app: AppConfig; apiKeyId: string };
}

/**
 * The app whose server API key is presented as `Authorization: Bearer <key>`, and which of its keys it is. Every
 * key of every app is compared in constant time.
 */
export async function appForApiKey(config: Config, authorization: string | undefined): Promise<{ app: AppConfig; keyIndex: number }> {
	const key = bearerToken(authorization);
	if (!key) throw new ApiError("unauthorized", "send the app's API key as `Authorization: Bearer <key>`");
	const found = await findSecret(key, config.apps.map((app) => app.apiKeys));
	if (!found) throw new ApiError("unauthorized", "the API key is not valid");
	return { app: config.apps[found.group]!, keyIndex: found.index };
}

/** Authenticates the server API key and counts the request against that key's rate limit. */
export const requireApiKey: MiddlewareHandler<ApiEnv> = async (c, next) => {
	const { app, keyIndex } = await appForApiKey(c.get("config"), c.req.header("authorization"));
	// Keyed by app and key position, never by the key itself.
	await enforceRateLimit(c.env.API_RATE_LIMITER, `${app.id}:key${keyIndex}`, "for this API key");
	c.set("app", app);
	c.set("apiKeyId", `api-key:${app.id}:${keyIndex}`);
	await next();
};

/**
 * Either the server API key (a backend), or the app's verify key with `appId` (a wrapper app asking for its own
 * user, where apps cannot hold API keys): the read-only access check takes both.
 */
export const requireApiOrVerifyKey: MiddlewareHandler<ApiEnv> = async (c, next) => {
	if (c.req.header("authorization") && !c.req.header("x-verify-key") && !c.req.query("key")) return requireApiKey(c, next);
	const appId = c.req.query("appId");
	const app = appId === undefined ? undefined : findApp(c.get("config"), appId);
	if (!app) throw new ApiError("unauthorized", "send the app's API key as `Authorization: Bearer <key>`, or its verify key (?key= or X-Verify-Key) with ?appId=");
	if (!app.verifyKeys || app.verifyKeys.length === 0) throw new ApiError("unauthorized", "this app has no verify keys: use its API key");
	await enforceRateLimit(c.env.VERIFY_RATE_LIMITER, `${app.id}:${c.req.header("cf-connecting-ip") ?? "unknown"}`, "from this address for this app");
	await checkVerifyKey(app, c.req.query("key") ?? c.req.header("x-verify-key"));
	c.set("app", app);
	c.set("apiKeyId", "verify-key");
	await next();
};

/**
 * /verify is called by apps, which cannot always set headers: an app that sets verifyKeys requires one of
 * them as `?key=`, `X-Verify-Key` or a Bearer token.
 */
export async function checkVerifyKey(app: AppConfig, presented: string | undefined): Promise<void> {
	if (!app.verifyKeys || app.verifyKeys.length === 0) return;
	if (!presented) throw new ApiError("unauthorized", "this app requires its verify key: pass ?key= or the X-Verify-Key header");
	if ((await indexOfSecret(presented, app.verifyKeys)) < 0) throw new ApiError("unauthorized", "the verify key is not valid");
}
