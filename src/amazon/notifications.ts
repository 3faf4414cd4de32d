/**
 * Amazon's Real-time Notifications (https://developer.amazon.com/docs/in-app-purchasing/real-time-notifications.html):
 * the Message of a verified SNS Notification is JSON naming the app (appPackageName), the Amazon user (appUserId),
 * the receipt and what happened (notificationType: SUBSCRIPTION_PURCHASED, SUBSCRIPTION_RENEWED,
 * SUBSCRIPTION_CANCELLED, ENTITLEMENT_CANCELLED, ...; Amazon may add types). A notification only says that something
 * changed; what changed is always asked of RVS (src/lifecycle/amazon.ts), since Amazon itself warns that what a
 * notification carries may be out of date by the time it arrives.
 */
import * as z from "zod";
import { InvalidNotification } from "../answers";
import type { SnsMessage } from "./sns";

const RtnMessage = z.looseObject({
	appPackageName: z.string().min(1).max(256),
	notificationType: z.string().min(1).max(128),
	/** Amazon documents at most 128 characters. */
	appUserId: z.string().min(1).max(256),
	/** Amazon documents at most 200 characters. */
	receiptId: z.string().min(1).max(256),
	/** SUBSCRIPTION_MODIFIED_IMMEDIATE: the receipt the plan change cancelled, as cancelledReceiptId; otherwise empty. */
	relatedReceipts: z.record(z.string(), z.unknown()).nullish(),
	/** Milliseconds since the epoch. */
	timestamp: z.number().int().nonnegative(),
	/** A Live App Testing purchase. */
	betaProductTransaction: z.boolean().optional(),
});

export interface AmazonNotification {
	/** SNS's MessageId: the same on every redelivery of one message. */
	id: string;
	topicArn: string;
	type: string;
	packageName: string;
	amazonUserId: string;
	receiptId: string;
	/** The receipt a plan change replaced with this one. */
	cancelledReceiptId: string | null;
	/** Amazon's time for the event (ms). */
	eventTime: number;
	/** The SNS message with its Message decoded, for the purchase's timeline. */
	decoded: Record<string, unknown>;
}

/** The Real-time Notification a verified SNS Notification carries. */
export function parseRtn(m: SnsMessage): AmazonNotification {
	let json: unknown;
	try {
		json = JSON.parse(m.Message);
	} catch {
		throw new InvalidNotification("invalid", "the SNS message's Message is not JSON");
	}
	const parsed = RtnMessage.safeParse(json);
	if (!parsed.success) throw new InvalidNotification("invalid", `the message is not an Amazon Real-time Notification (${parsed.error.issues[0]?.path.join(".") || "root"})`);
	const n = parsed.data;
	const cancelled = n.relatedReceipts?.cancelledReceiptId;
	return {
		id: m.MessageId,
		topicArn: m.TopicArn,
		type: n.notificationType,
		packageName: n.appPackageName,
		amazonUserId: n.appUserId,
		receiptId: n.receiptId,
		cancelledReceiptId: typeof cancelled === "string" && cancelled.length > 0 && cancelled.length <= 256 ? cancelled : null,
		eventTime: n.timestamp,
		decoded: { ...m, Message: n },
	};
}
