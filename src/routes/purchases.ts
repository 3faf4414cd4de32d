import { Hono } from "hono";
import * as z from "zod";
import type { ApiEnv } from "../http/auth";
import { ApiError, storeUnreachableError, toApiError, withEvidenceFields } from "../http/errors";
import {
	amazonUserIdField,
	appleEvidence,
	productIdField,
	purchaseTokenField,
	receiptField,
	receiptIdField,
	SERVER_API_EVIDENCE_FIELDS,
	signedTransactionField,
	transactionIdField,
	userIdField,
} from "../http/fields";
import { countRefusalAfter } from "../http/refusals";
import { BOOKMARK_HEADER } from "../http/session";
import { jsonBody } from "../http/validate";
import { describe } from "../openapi/describe";
import { ValidateAnswerSchema } from "../openapi/schemas";
import { claimStub } from "../ledger/grant";
import { Refusal, StoreUnreachable } from "../answers";
import { grantEvidence, type Upstream } from "../grant-evidence";
import type { Evidence } from "../verification";

/**
 * The server API, for an app's own backend: Bearer API key, Nakama-style answers.
 *   POST /v1/purchases/validate  verify, claim and record; {success, seen_before, purchase_provider_reachable, message, purchase, data}
 *   POST /v1/purchases/consume   consume a granted consumable with the store (Google), or in the ledger (Amazon), once
 */

/** The evidence a validate (or check) body carries. */
export const ValidateBody = z
	.discriminatedUnion(
		"store",
		[
			z.object({
				store: z.literal("google_play"),
				userId: userIdField,
				productId: productIdField,
				purchaseToken: purchaseTokenField,
				type: z.enum(["product", "subscription"], { error: 'must be "product" or "subscription"' }).optional(),
				restore: z.boolean({ error: "must be true or false" }).optional(),
				fresh: z.boolean({ error: "must be true or false" }).optional(),
			}),
			z.object({
				store: z.literal("app_store"),
				userId: userIdField,
				productId: productIdField,
				signedTransaction: signedTransactionField.optional(),
				transactionId: transactionIdField.optional(),
				receipt: receiptField.optional(),
				restore: z.boolean({ error: "must be true or false" }).optional(),
				fresh: z.boolean({ error: "must be true or false" }).optional(),
			}),
			z.object({
				store: z.literal("amazon"),
				userId: userIdField,
				productId: productIdField,
				receiptId: receiptIdField,
				amazonUserId: amazonUserIdField,
				restore: z.boolean({ error: "must be true or false" }).optional(),
				fresh: z.boolean({ error: "must be true or false" }).optional(),
			}),
		],
		{ error: 'must be "google_play", "app_store" or "amazon"' },
	)
	.transform((body, ctx) => {
		if (body.store === "google_play") {
			const evidence: Evidence = { store: "google_play", productId: body.productId, purchaseToken: body.purchaseToken, ...(body.type ? { typeHint: body.type } : {}) };
			return { userId: body.userId, evidence, restore: body.restore === true, fresh: body.fresh === true };
		}
		if (body.store === "amazon") {
			const evidence: Evidence = { store: "amazon", productId: body.productId, receiptId: body.receiptId, amazonUserId: body.amazonUserId };
			return { userId: body.userId, evidence, restore: body.restore === true, fresh: body.fresh === true };
		}
		const evidence = appleEvidence(body);
		if (!evidence) {
			ctx.addIssue({ code: "custom", path: ["signedTransaction"], message: "send signedTransaction, transactionId or receipt" });
			return z.NEVER;
		}
		return { userId: body.userId, evidence, restore: body.restore === true, fresh: body.fresh === true };
	});

/**
 * Google consumes with Google; Amazon has no consume call (the app reports fulfilment with notifyFulfillment), so an
 * Amazon consumable is consumed in its claim alone. The App Store consumes on the device.
 */
const ConsumeBody = z
	.discriminatedUnion(
		"store",
		[
			z.object({ store: z.literal("google_play"), userId: userIdField, productId: productIdField, purchaseToken: purchaseTokenField }),
			z.object({ store: z.literal("amazon"), userId: userIdField, productId: productIdField, receiptId: receiptIdField }),
		],
		{ error: 'must be "google_play" or "amazon" (the App Store consumes on the device)' },
	)
	.transform((body) => ({ ...body, transactionId: body.store === "google_play" ? body.purchaseToken : body.receiptId, field: body.store === "google_play" ? "purchaseToken" : "receiptId" }));

export const purchaseRoutes = new Hono<ApiEnv>()
	.post("/validate", describe({
		summary: "Verify, claim and record a purchase (server to server)",
		description:
			"For your own backend. Verifies the evidence with its store, claims it for `userId` and records it; answers Nakama's fields, the normalized purchase and the store's raw answer. " +
			"A refusal is 200 with `success: false` and `code`; an outage is 503 with `purchase_provider_reachable: false`. For the App Store send one or more of `signedTransaction`, `transactionId` and `receipt`.",
		tags: ["Verification"],
		security: ["apiKey"],
		responses: {
			200: {
				description: "Granted, or a verdict with its code",
				schema: ValidateAnswerSchema,
				example: { success: true, seen_before: false, purchase_provider_reachable: true, message: "valid", purchase: { appId: "1234", store: "google_play", productId: "premium_monthly", state: "active" }, data: {} },
			},
		},
		errors: [400, 401, 413, 429, 503],
	}), jsonBody(ValidateBody), async (c) => {
		const config = c.get("config");
		const app = c.get("app");
		const { userId, evidence, restore, fresh } = c.req.valid("json");
		const trace: { upstream?: Upstream } = {};
		try {
			const grant = await withEvidenceFields(SERVER_API_EVIDENCE_FIELDS, () => grantEvidence(c.env, app, config, evidence, userId, { restore, fresh }, trace));
			c.get("log").info("validate_granted", { app: app.id, store: grant.purchase.store, product: grant.purchase.productId, seen_before: grant.seenBefore, transferred: grant.transferredFrom !== null, upstream: trace.upstream });
			const { raw, ...normalized } = grant.purchase;
			if (grant.bookmark) c.header(BOOKMARK_HEADER, grant.bookmark);
			return c.json({
				success: true,
				seen_before: grant.seenBefore,
				purchase_provider_reachable: true,
				message: grant.seenBefore ? "valid; already granted to this user" : "valid",
				purchase: { ...normalized, userId, firstSeenAt: grant.firstSeenAt },
				...(grant.transferredFrom === null ? {} : { transferred_from: grant.transferredFrom }),
				data: raw,
			});
		} catch (err) {
			if (err instanceof Refusal) {
				c.get("log").info("validate_refused", { app: app.id, store: evidence.store, code: err.code, reason: err.message, upstream: trace.upstream });
				countRefusalAfter(c, app.id, evidence.store, err);
				// A purchase the store vouched for, in a state that grants nothing, is still described as the ledger holds it.
				const held = err.held ? (({ raw: _raw, ...normalized }) => normalized)(err.held.purchase) : null;
				return c.json({
					success: false,
					seen_before: err.held?.seenBefore ?? false,
					purchase_provider_reachable: true,
					message: err.message,
					code: err.code,
					purchase: held,
					data: err.raw ?? null,
				});
			}
			// An outage keeps Nakama's fields beside the error, so callers that read only those still see "unreachable".
			if (err instanceof StoreUnreachable) throw toApiError(err, { success: false, seen_before: false, purchase_provider_reachable: false, message: err.message });
			throw err;
		}
	})
	.post("/consume", describe({
		summary: "Consume a granted consumable, once (Google Play, Amazon)",
		description: "Google: consumes the purchase with Google for its owner; the product must be listed as `consumable` in the app's `products`. Amazon: marks it consumed in its claim (Amazon has no consume call; the app reports fulfilment with `notifyFulfillment`). Repeats answer `seen_before: true`.",
		tags: ["Verification"],
		security: ["apiKey"],
		responses: { 200: { description: "Consumed (now, or before)", example: { consumed: true, seen_before: false } } },
		errors: [400, 401, 404, 409, 429, 503],
	}), jsonBody(ConsumeBody), async (c) => {
		const app = c.get("app");
		const body = c.req.valid("json");
		// Consumables are one-time purchases: each token or receipt is a claim of its own.
		const outcome = await claimStub(c.env, body.store, body.transactionId).consume(body.userId, app.id, body.transactionId);
		switch (outcome.status) {
			case "consumed":
				return c.json({ consumed: true, seen_before: false });
			case "already_consumed":
				return c.json({ consumed: true, seen_before: true });
			case "unclaimed":
				throw new ApiError("not_found", "this purchase has not been validated for any user: validate it first", { field: body.field });
			case "not_owner":
				throw new ApiError("conflict", "this purchase belongs to another user", { field: "userId" });
			case "not_consumable":
				throw new ApiError(
					"conflict",
					body.store === "amazon" ? "this product is not a consumable (Amazon says what it is)" : "this product is not a consumable (see the app's products in APPS_CONFIG)",
					{ field: "productId" },
				);
			case "in_progress":
				throw new ApiError("conflict", "this purchase is being consumed by another request", { retryAfter: 1 });
			case "store_refused":
				throw new ApiError("conflict", `Google refused to consume this purchase: ${outcome.message}`, { field: body.field });
			case "store_unreachable":
				throw storeUnreachableError(body.store, outcome.message, outcome);
		}
	});
