import type { Context } from "hono";
import type { AmazonEvent } from "./amazon-changes";
import { ensureSubscription, signedMessage, snsConfig, snsHeaders, subscriptionArn, subscriptionConfirmed } from "./amazon-sns";
import { addNotification } from "./notifications";

/**
 * Amazon's Real-time Notifications (https://developer.amazon.com/docs/in-app-purchasing/real-time-notifications.html):
 * the RTN JSON {appPackageName, notificationType, appUserId, receiptId, relatedReceipts, timestamp,
 * betaProductTransaction} as the Message of a signed SNS Notification (amazon-sns.ts). A redelivery is the same
 * message: same MessageId, same body, same signature.
 */

export interface SentAmazonNotification {
	messageId: string;
	type: string;
	/** The exact SNS message POSTed. */
	body: string;
	/** The RTN inside it. */
	notification: Record<string, unknown>;
	/** Waiting for the service to confirm the SNS subscription. */
	held: boolean;
}

export async function notifyAmazon(c: Context, event: AmazonEvent, send: boolean, signatureVersion?: "1" | "2"): Promise<SentAmazonNotification> {
	const sns = snsConfig(c);
	const { receipt, notificationType } = event;
	const now = Date.now();
	const notification = {
		appPackageName: receipt.packageName,
		notificationType,
		appUserId: receipt.userId,
		receiptId: receipt.receiptId,
		relatedReceipts: event.relatedReceipts ?? {},
		timestamp: now,
		betaProductTransaction: receipt.betaProduct,
	};
	const messageId = crypto.randomUUID();
	const message = await signedMessage(
		sns,
		{
			Type: "Notification",
			MessageId: messageId,
			TopicArn: sns.topicArn,
			Message: JSON.stringify(notification),
			Timestamp: new Date(now).toISOString(),
			UnsubscribeURL: `${sns.url}?${new URLSearchParams({ Action: "Unsubscribe", SubscriptionArn: subscriptionArn(sns) })}`,
		},
		signatureVersion,
	);
	// SNS speaks to a new endpoint first of all to have it confirm the subscription.
	if (send) await ensureSubscription(c);
	const held = send && !subscriptionConfirmed();
	const body = JSON.stringify(message);
	addNotification(
		c,
		{
			id: messageId,
			store: "amazon",
			type: notificationType,
			subtype: null,
			transactionId: receipt.receiptId,
			scope: { packageName: receipt.packageName },
			body,
			headers: async () => snsHeaders(message, subscriptionArn(sns)),
			sent: send,
			held,
		},
		now,
	);
	return { messageId, type: notificationType, body, notification, held };
}
