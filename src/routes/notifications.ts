import { Hono } from "hono";
import * as z from "zod";
import { InvalidNotification } from "../answers";
import { verifyAppleNotification } from "../apple/notifications";
import { parsePush } from "../google/notifications";
import { authenticatePush } from "../google/push";
import type { AppEnv } from "../http/app";
import { jsonBody } from "../http/validate";
import { PushEnvelope } from "../google/notifications";
import { describe } from "../openapi/describe";
import { applyAppleNotification } from "../lifecycle/apple";
import { applyGoogleNotification } from "../lifecycle/google";

/**
 * The stores' server notifications. Each is answered 200 only once what it says is in D1; anything that fails
 * after it was authenticated answers 5xx, so the store delivers it again (deduplication makes that harmless). A
 * notification that does not verify is refused (401/400) and nothing is written.
 *   POST /v1/notifications/apple   App Store Server Notifications V2: {"signedPayload": "<JWS>"}
 *   POST /v1/notifications/google  Real-time Developer Notifications, as an authenticated Pub/Sub push
 */

const AppleBody = z.object({ signedPayload: z.string({ error: "must be the notification's JWS" }).min(1).max(256 * 1024).describe("The notification, as Apple signs it (a JWS).") });

const Received = z.object({ received: z.literal(true), status: z.enum(["applied", "unchanged", "duplicate", "recorded", "ignored"]), reason: z.string().optional() });

export const notificationRoutes = new Hono<AppEnv>()
	.post("/apple", describe({
		summary: "App Store Server Notifications V2 (called by Apple)",
		description: "Verified like a signed transaction (chain to Apple Root CA - G3, Apple's OIDs); answered 200 only once what it says is in D1, 5xx when it could not be recorded (Apple delivers it again). Each is applied once.",
		tags: ["Notifications"],
		responses: { 200: { description: "Received", schema: Received, example: { received: true, status: "applied" } } },
		errors: [400, 413, 503],
	}), jsonBody(AppleBody), async (c) => {
		const { signedPayload } = c.req.valid("json");
		const config = c.get("config");
		const verified = await verifyAppleNotification(signedPayload, { roots: config.appleTrustStore, apps: config.apps });
		const applied = await applyAppleNotification(c.env, verified, "push", c.get("log"));
		return c.json({ received: true, ...applied });
	})
	.post("/google", describe({
		summary: "Real-time Developer Notifications (an authenticated Pub/Sub push)",
		description: "Every push's OIDC token is verified (Google's signature, issuer, audience, service account); the purchase is then fetched from the Play Developer API and recorded as Google states it.",
		tags: ["Notifications"],
		security: ["pubsubOidc"],
		body: PushEnvelope,
		responses: { 200: { description: "Received", schema: Received, example: { received: true, status: "applied" } } },
		errors: [400, 401, 413, 503],
	}), async (c) => {
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
