import { Hono } from "hono";
import * as z from "zod";
import { InvalidNotification } from "../answers";
import { parseRtn } from "../amazon/notifications";
import { confirmSubscription, parseSnsMessage, SnsMessage, verifySnsMessage } from "../amazon/sns";
import { verifyAppleNotification } from "../apple/notifications";
import { parsePush } from "../google/notifications";
import { authenticatePush } from "../google/push";
import type { AppEnv } from "../http/app";
import { jsonBody } from "../http/validate";
import { PushEnvelope } from "../google/notifications";
import { applyAmazonNotification } from "../lifecycle/amazon";
import { describe } from "../openapi/describe";
import { applyAppleNotification } from "../lifecycle/apple";
import { applyGoogleNotification } from "../lifecycle/google";

/**
 * The stores' server notifications. Each is answered 200 only once what it says is in D1; anything that fails
 * after it was authenticated answers 5xx, so the store delivers it again (deduplication makes that harmless). A
 * notification that does not verify is refused (401/400) and nothing is written.
 *   POST /v1/notifications/apple   App Store Server Notifications V2: {"signedPayload": "<JWS>"}
 *   POST /v1/notifications/google  Real-time Developer Notifications, as an authenticated Pub/Sub push
 *   POST /v1/notifications/amazon  Amazon's Real-time Notifications, as signed Amazon SNS messages (and the SNS
 *                                  subscription's confirmation)
 */

const AppleBody = z.object({ signedPayload: z.string({ error: "must be the notification's JWS" }).min(1).max(256 * 1024).describe("The notification, as Apple signs it (a JWS).") });

const Received = z.object({ received: z.literal(true), status: z.enum(["applied", "unchanged", "duplicate", "recorded", "ignored", "confirmed"]), reason: z.string().optional() });

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
	})
	.post("/amazon", describe({
		summary: "Amazon's Real-time Notifications (signed Amazon SNS messages, called by SNS)",
		description:
			"SNS posts its JSON message as `text/plain`. Its signature (SignatureVersion 1 or 2) is checked with the certificate from `SigningCertURL`, which must be on an allowed SNS host over https; a `SubscriptionConfirmation` is confirmed by fetching `SubscribeURL` (same check). A `Notification` names a receipt, which is then fetched from RVS and recorded as Amazon states it. Each `MessageId` is applied once.",
		tags: ["Notifications"],
		body: SnsMessage,
		responses: { 200: { description: "Received (or the subscription confirmed)", schema: Received, example: { received: true, status: "applied" } } },
		errors: [400, 401, 413, 503],
	}), async (c) => {
		const config = c.get("config");
		const log = c.get("log");
		// SNS posts JSON labelled text/plain; the signature is checked before anything in it is believed.
		const message = parseSnsMessage(await c.req.text(), c.req.header("x-amz-sns-message-type"));
		const sns = { sns: config.notifications.amazonSns, timeoutMs: config.storeTimeoutMs };
		await verifySnsMessage(message, sns);
		switch (message.Type) {
			case "SubscriptionConfirmation":
				// Amazon's Developer Console may ask for the confirmation token: it is logged for the operator to copy (it
				// confirms this endpoint's subscription and nothing else).
				log.info("amazon_sns_subscription_confirmation", { topic: message.TopicArn, id: message.MessageId, token: message.Token });
				await confirmSubscription(message, sns);
				log.info("amazon_sns_subscription_confirmed", { topic: message.TopicArn, id: message.MessageId });
				return c.json({ received: true, status: "confirmed" });
			case "UnsubscribeConfirmation":
				// Someone removed the endpoint in the Developer Console: nothing to do but say so.
				log.warn("amazon_sns_unsubscribed", { topic: message.TopicArn, id: message.MessageId });
				return c.json({ received: true, status: "recorded" });
			case "Notification": {
				const notification = parseRtn(message);
				const app = config.apps.find((a) => a.amazon?.packageName === notification.packageName);
				if (!app) throw new InvalidNotification("invalid", `no app here has Amazon package ${notification.packageName} (apps[].amazon.packageName in APPS_CONFIG)`);
				const applied = await applyAmazonNotification(c.env, config, app, notification, log);
				return c.json({ received: true, ...applied });
			}
		}
	});
