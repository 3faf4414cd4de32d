import { Hono, type Context } from "hono";
import { authenticateApple } from "./apple-auth";
import { appleError, injectedApiError } from "./apple-errors";
import { notificationHistory, subjectOfHistoryRequest } from "./apple-history";
import { configOf } from "./config";
import {
	appleTransactions,
	renewalInfoPayload,
	signApple,
	signTransaction,
	subscriptionChain,
	subscriptionStatus,
	type AppleTransactionRecord,
} from "./apple-transactions";
import { storeEndpoint } from "./store-endpoint";

/**
 * The App Store Server API endpoints the service uses, for one environment: mounted at {base}/apple/production
 * (endpoints.appleProduction) and {base}/apple/sandbox (endpoints.appleSandbox). Each server knows only its own
 * environment's transactions, and only those of the app named by the token's `bid`: Get Transaction Info, Get All
 * Subscription Statuses, and Get Notification History (apple-history.ts).
 */

export function appleApi(environment: "Production" | "Sandbox") {
	const api = new Hono();

	/** Authenticates as Apple does (bare 401), applies an injected Apple error, then finds the transaction. */
	async function lookup(c: Context, id: string): Promise<{ response: Response } | { transaction: AppleTransactionRecord }> {
		const config = configOf(c).apple;
		const caller = await authenticateApple(c.req.header("authorization"), config);
		if ("refused" in caller) {
			console.log(`store emulator: App Store Server API 401 (${caller.refused})`);
			return { response: c.body(null, 401) };
		}
		const injected = injectedApiError(c, new URL(c.req.url).pathname);
		if (injected) return { response: injected };
		if (!/^\d+$/.test(id)) return { response: appleError(c, 4000006) };
		const transaction = appleTransactions.get(id);
		// Another app's transaction, or one of the other environment, does not exist for this caller.
		if (!transaction || transaction.environment !== environment || transaction.bundleId !== caller.bundleId) {
			return { response: appleError(c, 4040010) };
		}
		return { transaction };
	}

	api.get("/inApps/v1/transactions/:transactionId", storeEndpoint("apple.transactions.get"), async (c) => {
		const found = await lookup(c, c.req.param("transactionId") ?? "");
		if ("response" in found) return found.response;
		return c.json({ signedTransactionInfo: await signTransaction(configOf(c).apple, found.transaction) });
	});

	api.get("/inApps/v1/subscriptions/:transactionId", storeEndpoint("apple.subscriptions.get"), async (c) => {
		const found = await lookup(c, c.req.param("transactionId") ?? "");
		if ("response" in found) return found.response;
		const config = configOf(c).apple;
		const { transaction } = found;
		const app = config.apps.find((a) => a.bundleId === transaction.bundleId);
		const data = [];
		if (transaction.type === "Auto-Renewable Subscription") {
			// The latest transaction of every subscription of this account in the group.
			const originals = new Set(
				[...appleTransactions.values()]
					.filter((t) => t.account === transaction.account && t.environment === environment && t.subscriptionGroupIdentifier === transaction.subscriptionGroupIdentifier)
					.map((t) => t.originalTransactionId),
			);
			const lastTransactions = [];
			for (const original of originals) {
				const latest = subscriptionChain(original).at(-1)!;
				lastTransactions.push({
					status: subscriptionStatus(latest),
					originalTransactionId: original,
					signedTransactionInfo: await signTransaction(config, latest),
					signedRenewalInfo: await signApple(config, renewalInfoPayload(latest)),
				});
			}
			data.push({ subscriptionGroupIdentifier: transaction.subscriptionGroupIdentifier, lastTransactions });
		}
		return c.json({ environment, bundleId: transaction.bundleId, ...(app ? { appAppleId: app.appAppleId } : {}), data });
	});

	api.post("/inApps/v1/notifications/history", storeEndpoint("apple.notifications.history", subjectOfHistoryRequest), notificationHistory(environment));

	return api;
}
