import { Refusal } from "../answers";
import type { AmazonNotification } from "../amazon/notifications";
import { amazonClientFor, fetchAmazonPurchase } from "../amazon/verify";
import type { AppConfig, Config } from "../config/schema";
import { replacing, withAmazonSubscription } from "../ledger/amazon-plan-change";
import { unitIdOf } from "../ledger/claim";
import { findPurchase } from "../ledger/history";
import { notificationRecorded, recordNotification } from "../ledger/notifications";
import type { Logger } from "../log";
import type { Purchase } from "../purchase";
import type { AppliedNotification } from "./apple";
import { applyStatement, appliedStatus } from "./apply";

/**
 * An Amazon Real-time Notification, verified (its SNS signature) and applied. What it says is never recorded: it only
 * names a receipt and its Amazon user, and the receipt is asked of RVS (one call) and recorded as Amazon states it
 * then, whatever the notification's type. A notification already recorded (SNS redelivers by MessageId) changes
 * nothing and costs no RVS call. RVS saying the receipt is no longer valid (410) revokes a purchase the history holds.
 */
export async function applyAmazonNotification(env: Env, config: Config, app: AppConfig, n: AmazonNotification, log: Logger): Promise<AppliedNotification> {
	if (await notificationRecorded(env.DB, "amazon", n.id)) return { status: "duplicate" };
	let status: AppliedNotification["status"] = "recorded";
	let purchase: Purchase | undefined;
	try {
		purchase = await fetchAmazonPurchase(app, amazonClientFor(app, config), { receiptId: n.receiptId, amazonUserId: n.amazonUserId });
	} catch (err) {
		if (!(err instanceof Refusal)) throw err;
		if (err.code === "sandbox_not_accepted") {
			log.info("notification_ignored", { store: "amazon", app: app.id, id: n.id, type: n.type, reason: "sandbox_not_accepted" });
			return { status: "ignored", reason: "the app does not accept Sandbox purchases" };
		}
		log.info("notification_not_a_purchase", { store: "amazon", app: app.id, id: n.id, type: n.type, code: err.code, reason: err.message });
		// RVS 410, as of now: Amazon no longer honours a receipt the history holds.
		const held = err.code === "canceled" ? await findPurchase(env.DB, "amazon", n.receiptId) : null;
		if (held) {
			const outcome = await applyStatement(
				env,
				"amazon",
				held.subscriptionId ?? held.transactionId,
				{ kind: "voided", store: "amazon", transactionId: n.receiptId, state: "revoked", asOf: Date.now() },
				n.id,
			);
			status = appliedStatus(outcome);
		}
	}
	if (purchase) {
		// A plan change's new receipt joins the subscription of the receipt it cancelled.
		purchase = n.cancelledReceiptId === null ? await withAmazonSubscription(env.DB, purchase) : await replacing(env.DB, purchase, n.cancelledReceiptId);
		const outcome = await applyStatement(env, "amazon", unitIdOf(purchase), { kind: "purchase", purchase }, n.id);
		status = appliedStatus(outcome);
	}
	await recordNotification(env.DB, {
		store: "amazon",
		id: n.id,
		appId: app.id,
		type: n.type,
		subtype: null,
		transactionId: n.receiptId,
		subscriptionId: purchase?.subscriptionId ?? null,
		environment: purchase?.environment ?? null,
		signedAt: n.eventTime,
		source: "push",
		payload: n.decoded,
	});
	log.info("notification_applied", { store: "amazon", app: app.id, id: n.id, type: n.type, status, topic: n.topicArn });
	return { status };
}
