import { Hono } from "hono";
import * as z from "zod";
import { appForApiKey } from "../http/auth";
import type { AppEnv } from "../http/app";
import { ApiError, storeUnreachableError } from "../http/errors";
import { parseJsonBody } from "../http/validate";
import { claimStub, grantPurchase, recordLapse } from "../ledger/grant";
import { Refusal, StoreUnreachable } from "../purchase";
import { verifyEvidence, type Evidence } from "../verification";

/**
 * The server API, for an app's own backend: Bearer API key, Nakama-style answers.
 *   POST /v1/purchases/validate  verify, claim and record; {success, seen_before, purchase_provider_reachable, message, purchase, data}
 *   POST /v1/purchases/consume   consume a granted consumable with the store, once
 */

const userId = z.string().trim().min(1, { error: "must be a non-empty string" }).max(256);
const productId = z.string().min(1, { error: "must be a non-empty string" }).max(256);

const ValidateBody = z.discriminatedUnion(
	"store",
	[
		z.object({
			store: z.literal("google_play"),
			userId,
			productId,
			purchaseToken: z.string().min(1, { error: "must be a non-empty string" }).max(4096),
			type: z.enum(["product", "subscription"]).optional(),
		}),
		z.object({
			store: z.literal("app_store"),
			userId,
			productId,
			signedTransaction: z.string().min(1).max(64 * 1024).optional(),
			transactionId: z.string().regex(/^\d{1,32}$/, { error: "must be an App Store transaction id (digits)" }).optional(),
			receipt: z.string().min(1).optional(),
		}).refine((b) => b.signedTransaction !== undefined || b.transactionId !== undefined || b.receipt !== undefined, {
			error: "send signedTransaction, transactionId or receipt",
			path: ["signedTransaction"],
		}),
	],
	{ error: 'must be "google_play" or "app_store"' },
);

const ConsumeBody = z.object({
	store: z.literal("google_play", { error: 'must be "google_play" (the App Store consumes on the device)' }),
	userId,
	productId,
	purchaseToken: z.string().min(1).max(4096),
});

export const purchaseRoutes = new Hono<AppEnv>()
	.post("/validate", async (c) => {
		const config = c.get("config");
		const app = await appForApiKey(config, c.req.header("authorization"));
		const body = await parseJsonBody(c, ValidateBody);
		const evidence: Evidence =
			body.store === "google_play"
				? { store: "google_play", productId: body.productId, purchaseToken: body.purchaseToken, ...(body.type ? { typeHint: body.type } : {}) }
				: {
						store: "app_store",
						productId: body.productId,
						userId: body.userId,
						...(body.signedTransaction ? { signedTransaction: body.signedTransaction } : {}),
						...(body.transactionId ? { transactionId: body.transactionId } : {}),
						...(body.receipt ? { receipt: body.receipt } : {}),
					};
		try {
			const purchase = await verifyEvidence(app, config, evidence);
			const grant = await grantPurchase(c.env, purchase, body.userId);
			c.get("log").info("validate_granted", { app: app.id, store: purchase.store, product: purchase.productId, seen_before: grant.seenBefore });
			const { raw, ...normalized } = purchase;
			return c.json({
				success: true,
				seen_before: grant.seenBefore,
				purchase_provider_reachable: true,
				message: grant.seenBefore ? "valid; already granted to this user" : "valid",
				purchase: { ...normalized, userId: body.userId, firstSeenAt: grant.firstSeenAt },
				data: raw,
			});
		} catch (err) {
			if (err instanceof Refusal) {
				c.get("log").info("validate_refused", { app: app.id, store: body.store, code: err.code, reason: err.message });
				await recordLapse(c.env, err, c.get("log"));
				return c.json({ success: false, seen_before: false, purchase_provider_reachable: true, message: err.message, code: err.code, purchase: null, data: err.raw ?? null });
			}
			if (err instanceof StoreUnreachable) {
				throw storeUnreachableError(err.store, err.message, {
					...err.options,
					extra: { success: false, seen_before: false, purchase_provider_reachable: false, message: err.message },
				});
			}
			throw err;
		}
	})
	.post("/consume", async (c) => {
		const app = await appForApiKey(c.get("config"), c.req.header("authorization"));
		const body = await parseJsonBody(c, ConsumeBody);
		const outcome = await claimStub(c.env, body.store, body.purchaseToken).consume(body.userId, app.id);
		switch (outcome.status) {
			case "consumed":
				return c.json({ consumed: true, seen_before: false });
			case "already_consumed":
				return c.json({ consumed: true, seen_before: true });
			case "unclaimed":
				throw new ApiError("not_found", "this purchase has not been validated for any user: validate it first", { field: "purchaseToken" });
			case "not_owner":
				throw new ApiError("conflict", "this purchase belongs to another user", { field: "userId" });
			case "not_consumable":
				throw new ApiError("conflict", "this product is not a consumable (see the app's products in APPS_CONFIG)", { field: "productId" });
			case "in_progress":
				throw new ApiError("conflict", "this purchase is being consumed by another request", { retryAfter: 1 });
			case "store_refused":
				throw new ApiError("conflict", `Google refused to consume this purchase: ${outcome.message}`, { field: "purchaseToken" });
			case "store_unreachable":
				throw storeUnreachableError(body.store, outcome.message, outcome);
		}
	});
