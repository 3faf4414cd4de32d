import { Refusal } from "../answers";
import type { AppConfig, Config } from "../config/schema";
import type { GoogleNotification } from "../google/notifications";
import { fetchGooglePurchase, googleClientFor } from "../google/verify";
import { unitIdOf } from "../ledger/claim";
import { withGoogleSubscription } from "../ledger/google-chain";
import { findPurchase } from "../ledger/history";
import { recordNotification } from "../ledger/notifications";
import type { Logger } from "../log";
import type { Purchase } from "../purchase";
import type { AppliedNotification } from "./apple";
import { applyStatement, appliedStatus } from "./apply";

/**
 * A Real-time Developer Notification, applied. Its content is never trusted: it only names a purchase token, and
 * the purchase is fetched from the Play Developer API (one call) and recorded as Google states it. A void (refund
 * or chargeback) marks the purchase refunded, whatever Google's purchase resource says later.
 */
export async function applyGoogleNotification(
	env: Env,
	config: Config,
	app: AppConfig,
	notification: GoogleNotification,
	source: "push" | "catch_up",
	log: Logger,
): Promise<AppliedNotification> {
	const { event } = notification;
	let status: AppliedNotification["status"] = "recorded";
	let transactionId: string | null = null;
	let subscriptionId: string | null = null;
	let type: string = event.kind;
	const note = (purchase: Purchase) => {
		transactionId = purchase.transactionId;
		subscriptionId = purchase.subscriptionId;
	};
	const client = googleClientFor(app, config);

	/** Google's current word on a token, or nothing when Google says it is no purchase (yet): a pending one, an unknown token. */
	async function fetch(lookup: Parameters<typeof fetchGooglePurchase>[2]): Promise<Purchase | undefined> {
		try {
			return await withGoogleSubscription(env, app, config, await fetchGooglePurchase(app, client, lookup));
		} catch (err) {
			if (err instanceof Refusal) {
				log.info("notification_not_a_purchase", { store: "google_play", app: app.id, id: notification.id, code: err.code, reason: err.message });
				return undefined;
			}
			throw err;
		}
	}

	async function apply(purchase: Purchase): Promise<void> {
		note(purchase);
		const outcome = await applyStatement(env, "google_play", unitIdOf(purchase), { kind: "purchase", purchase }, notification.id);
		status = appliedStatus(outcome);
	}

	switch (event.kind) {
		case "subscription": {
			type = `subscription.${event.type}`;
			const purchase = await fetch({ type: "subscription", token: event.token });
			if (purchase) await apply(purchase);
			else transactionId = event.token;
			break;
		}
		case "one_time": {
			type = `one_time.${event.type}`;
			const purchase = await fetch({ type: "product", productId: event.productId, token: event.token });
			if (purchase) await apply(purchase);
			else transactionId = event.token;
			break;
		}
		case "voided": {
			type = event.fullRefund ? "voided.refund" : "voided.partial_refund";
			transactionId = event.token;
			// A quantity-based partial refund leaves the rest of the purchase standing: recorded, not applied.
			if (!event.fullRefund) break;
			const known = await findPurchase(env.DB, "google_play", event.token);
			if (!known && event.productType === "subscription") {
				// Not seen before: record what Google says of it, so that the void has something to mark.
				const purchase = await fetch({ type: "subscription", token: event.token });
				if (purchase) await apply(purchase);
			}
			const held = known ?? (await findPurchase(env.DB, "google_play", event.token));
			if (held) {
				subscriptionId = held.subscriptionId;
				const outcome = await applyStatement(
					env,
					"google_play",
					held.subscriptionId ?? held.transactionId,
					{ kind: "voided", store: "google_play", transactionId: event.token, state: "refunded", asOf: notification.eventTime },
					`${notification.id}:void`,
				);
				status = appliedStatus(outcome);
			}
			// A one-time product nobody here has seen: Google answers any later verification of it with its void.
			break;
		}
		case "test":
		case "unknown":
			break;
	}
	await recordNotification(env.DB, {
		store: "google_play",
		id: notification.id,
		appId: app.id,
		type,
		subtype: null,
		transactionId,
		subscriptionId,
		environment: null,
		signedAt: notification.eventTime,
		source,
		payload: notification.decoded,
	});
	log.info("notification_applied", { store: "google_play", app: app.id, id: notification.id, type, status, source });
	return { status };
}
