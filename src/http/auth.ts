import type { AppConfig, Config } from "../config/schema";
import { ApiError } from "./errors";
import { matchesAnySecret } from "./secrets";

/** The token of an `Authorization: Bearer <token>` header, if that is what the header holds. */
export function bearerToken(authorization: string | undefined): string | undefined {
	return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
}

/** The app whose server API key is presented as `Authorization: Bearer <key>`. Every key is compared in constant time. */
export async function appForApiKey(config: Config, authorization: string | undefined): Promise<AppConfig> {
	const key = bearerToken(authorization);
	if (!key) throw new ApiError("unauthorized", "send the app's API key as `Authorization: Bearer <key>`");
	const matches = await Promise.all(config.apps.map((app) => matchesAnySecret(key, app.apiKeys)));
	const index = matches.indexOf(true);
	if (index < 0) throw new ApiError("unauthorized", "the API key is not valid");
	return config.apps[index]!;
}

/**
 * /verify is called by apps, which cannot always set headers: an app that sets verifyKeys requires one of
 * them as `?key=`, `X-Verify-Key` or a Bearer token.
 */
export async function checkVerifyKey(app: AppConfig, presented: string | undefined): Promise<void> {
	if (!app.verifyKeys || app.verifyKeys.length === 0) return;
	if (!presented) throw new ApiError("unauthorized", "this app requires its verify key: pass ?key= or the X-Verify-Key header");
	if (!(await matchesAnySecret(presented, app.verifyKeys))) throw new ApiError("unauthorized", "the verify key is not valid");
}
