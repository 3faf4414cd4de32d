import { Hono } from "hono";
import * as z from "zod";
import { InvalidNotification } from "../answers";
import { parseRtn } from "../amazon/notifications";
import { confirmSubscription, parseSnsMessage, verifySnsMessage } from "../amazon/sns";
import { verifyAppleNotification } from "../apple/notifications";
import { parsePush } from "../google/notifications";
import { authenticatePush } from "../google/push";
import type { AppEnv } from "../http/app";
import { parseJsonBody } from "../http/validate";
import { applyAmazonNotification } from "../lifecycle/amazon";
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
	})
	.post("/amazon", async (c) => {
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
