import type { VerifiedNotification } from "../apple/notifications";
import { purchaseFromTransaction } from "../apple/judge";
import { unitIdOf } from "../ledger/claim";
import { recordNotification } from "../ledger/notifications";
import type { Logger } from "../log";
import { applyStatement, appliedStatus } from "./apply";

export type AppliedNotification = { status: "applied" | "unchanged" | "duplicate" | "recorded" | "ignored"; reason?: string };

/**
 * An App Store Server Notification, verified, applied to the purchase it is about. Apple signs the transaction and
 * renewal info it carries, so the purchase's state is read from them (refund, grace, billing retry, renewal turned
 * off) as of the notification's signedDate; no call to Apple is needed. The notification itself joins the
 * purchase's timeline, including the ones that change nothing (TEST, PRICE_INCREASE, CONSUMPTION_REQUEST, ...).
 */
export async function applyAppleNotification(env: Env, verified: VerifiedNotification, source: "push" | "catch_up", log: Logger): Promise<AppliedNotification> {
	const { app, notification } = verified;
	if (notification.environment === "Sandbox" && !app.acceptSandbox) {
		log.info("notification_ignored", { store: "app_store", app: app.id, id: notification.id, type: notification.type, reason: "sandbox_not_accepted" });
		return { status: "ignored", reason: "the app does not accept Sandbox purchases" };
	}
	let status: AppliedNotification["status"] = "recorded";
	let subscriptionId: string | null = null;
	if (notification.transaction) {
		const now = Date.now();
		const said = purchaseFromTransaction(app, notification.transaction, notification.renewal, now);
		// What Apple signed in this notification is its word as of the notification, whichever is later.
		const purchase = { ...said, asOf: Math.max(said.asOf, notification.signedDate) };
		subscriptionId = purchase.subscriptionId;
		const outcome = await applyStatement(env, "app_store", unitIdOf(purchase), { kind: "purchase", purchase }, notification.id);
		status = appliedStatus(outcome);
	}
	await recordNotification(env.DB, {
		store: "app_store",
		id: notification.id,
		appId: app.id,
		type: notification.type,
		subtype: notification.subtype,
		transactionId: notification.transaction?.transactionId ?? null,
		subscriptionId,
		environment: notification.environment,
		signedAt: notification.signedDate,
		source,
		payload: notification.decoded,
	});
	log.info("notification_applied", { store: "app_store", app: app.id, id: notification.id, type: notification.type, subtype: notification.subtype, status, source });
	return { status };
}
