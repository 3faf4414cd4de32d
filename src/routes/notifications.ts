import { Hono } from "hono";
import * as z from "zod";
import { InvalidNotification } from "../answers";
import { verifyAppleNotification } from "../apple/notifications";
import { parsePush } from "../google/notifications";
import { authenticatePush } from "../google/push";
import type { AppEnv } from "../http/app";
import { parseJsonBody } from "../http/validate";
import { applyAppleNotification } from "../lifecycle/apple";
import { applyGoogleNotification } from "../lifecycle/google";

/**
 * The stores' server notifications. Each is answered 200 only once what it says is in D1; anything that fails
 * after it was authenticated answers 5xx, so the store delivers it again (deduplication makes that harmless). A
 * notification that does not verify is refused (401/400) and nothing is written.
 *   POST /v1/notifications/apple   App Store Server Notifications V2: {"signedPayload": "<JWS>"}
 *   POST /v1/notifications/google  Real-time Developer Notifications, as an authenticated Pub/Sub push
 */

const AppleBody = z.object({ signedPayload: z.string({ error: "must be the notification's JWS" }).min(1).max(256 * 1024) });

export const notificationRoutes = new Hono<AppEnv>()
	.post("/apple", async (c) => {
		const { signedPayload } = await parseJsonBody(c, AppleBody);
		const config = c.get("config");
		const verified = await verifyAppleNotification(signedPayload, { roots: config.appleTrustStore, apps: config.apps });
		const applied = await applyAppleNotification(c.env, verified, "push", c.get("log"));
		return c.json({ received: true, ...applied });
	})
	.post("/google", async (c) => {
		const config = c.get("config");
		const authorization = c.req.header("authorization");
		if (!authorization) throw new InvalidNotification("unauthenticated", "a Pub/Sub push must carry its OIDC token as `Authorization: Bearer <token>`");
		let body: unknown;
		try {
			body = await c.req.json();
		} catch {
			throw new InvalidNotification("invalid", "the body is not JSON");
		}
		const notification = parsePush(body);
		const app = config.apps.find((a) => a.google?.packageName === notification.packageName);
		if (!app) throw new InvalidNotification("invalid", `no app here has package ${notification.packageName} (apps[].google.packageName in APPS_CONFIG)`);
		const push = app.google?.push ?? config.notifications.googlePush;
		if (!push) {
			throw new InvalidNotification("unauthenticated", `push notifications are not configured for ${notification.packageName} (apps[].google.push or notifications.googlePush in APPS_CONFIG)`);
		}
		await authenticatePush(authorization, push, { certsUrl: config.endpoints.googleCerts, timeoutMs: config.storeTimeoutMs });
		const applied = await applyGoogleNotification(c.env, config, app, notification, "push", c.get("log"));
		return c.json({ received: true, ...applied });
	});
