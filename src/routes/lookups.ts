import { Hono } from "hono";
import * as z from "zod";
import { Refusal, StoreUnreachable } from "../answers";
import type { ApiEnv } from "../http/auth";
import { ApiError, toApiError, withEvidenceFields } from "../http/errors";
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
} from "../http/fields";
import { answerBookmark, readSession } from "../http/session";
import { jsonBody, paramsOf, queryOf } from "../http/validate";
import { findPurchasesBy, holdersOf } from "../ledger/history";
import { purchaseDetail, shown } from "../ledger/purchase-detail";
import { describe } from "../openapi/describe";
import { HistoryEntrySchema, PurchaseDetailSchema, PurchaseSchema, RefusalCodeSchema } from "../openapi/schemas";
import { currentState, isEntitled, STORES, type Purchase } from "../purchase";
import { listEvidence, type Evidence } from "../verification";

/**
 * Look-ups for support and backends (API key):
 *   GET  /v1/purchases/{store}/{transactionId}   one purchase: owner, state, the claim's state, timeline, audit trail
 *   GET  /v1/purchases?orderId=… | ?originalTransactionId=…
 *   POST /v1/purchases/check                      what evidence holds and who holds it, claiming nothing
 */

const StoreParam = z.enum(STORES, { error: `must be one of ${STORES.map((s) => `"${s}"`).join(", ")}` });
export const PurchaseParams = z.object({
	store: StoreParam,
	transactionId: z.string().min(1).max(1024).describe("Google's purchase token, Apple's transaction id or Amazon's receipt id, URL-encoded."),
});

const SearchQuery = z
	.object({ orderId: z.string().min(1).max(256).optional(), originalTransactionId: transactionIdField.optional() })
	.refine((q) => (q.orderId === undefined) !== (q.originalTransactionId === undefined), { error: "send exactly one of orderId and originalTransactionId", path: ["orderId"] });

const CheckBody = z
	.discriminatedUnion(
		"store",
		[
			z.object({ store: z.literal("google_play"), productId: productIdField, purchaseToken: purchaseTokenField, type: z.enum(["product", "subscription"]).optional() }),
			z.object({
				store: z.literal("app_store"),
				productId: productIdField.optional(),
				signedTransaction: signedTransactionField.optional(),
				transactionId: transactionIdField.optional(),
				receipt: receiptField.optional(),
			}),
			z.object({ store: z.literal("amazon"), productId: productIdField.optional(), receiptId: receiptIdField, amazonUserId: amazonUserIdField }),
		],
		{ error: 'must be "google_play", "app_store" or "amazon"' },
	)
	.transform((body, ctx): Evidence => {
		if (body.store === "google_play") return { store: "google_play", productId: body.productId, purchaseToken: body.purchaseToken, ...(body.type ? { typeHint: body.type } : {}) };
		// No product: any product the receipt is for.
		if (body.store === "amazon") return { store: "amazon", productId: body.productId ?? "", receiptId: body.receiptId, amazonUserId: body.amazonUserId };
		// A check claims nothing, so there is no user and no product to hold the evidence to.
		const evidence = appleEvidence({ ...body, productId: body.productId ?? "", userId: "" });
		if (evidence) return evidence;
		ctx.addIssue({ code: "custom", path: ["signedTransaction"], message: "send signedTransaction, transactionId or receipt" });
		return z.NEVER;
	});

export const lookupRoutes = new Hono<ApiEnv>()
	.get("/", describe({
		summary: "Find purchases by order id or original transaction id",
		description: "What a store's receipt e-mail or a notification shows. Send exactly one of `orderId` and `originalTransactionId`.",
		tags: ["Support"],
		security: ["apiKey"],
		responses: { 200: { description: "The app's purchases that match", schema: z.object({ purchases: z.array(HistoryEntrySchema) }) } },
		errors: [400, 401, 429, 503],
	}), queryOf(SearchQuery), async (c) => {
		const query = c.req.valid("query");
		const session = readSession(c);
		const found = await findPurchasesBy(session, c.get("app").id, query.orderId !== undefined ? { orderId: query.orderId } : { originalTransactionId: query.originalTransactionId! });
		answerBookmark(c, session);
		return c.json({ purchases: found.map((entry) => shown(entry)) });
	})
	.post("/check", describe({
		summary: "What evidence holds and who holds it, claiming nothing",
		description: "Evidence exactly as `validate` takes it (`userId` and, for the App Store, `productId` optional), verified with the store: every transaction it holds, its state, and who in this app holds it.",
		tags: ["Verification"],
		security: ["apiKey"],
		responses: {
			200: {
				description: "The transactions, or a verdict",
				schema: z.object({ valid: z.boolean(), code: RefusalCodeSchema.optional(), message: z.string().optional(), transactions: z.array(PurchaseSchema.extend({ currentState: z.string(), entitled: z.boolean(), owner: z.string().nullable() })) }),
				example: { valid: true, transactions: [{ store: "app_store", transactionId: "1000000000000001", productId: "premium_lifetime", state: "active", currentState: "active", entitled: true, owner: "apple-user" }] },
			},
		},
		errors: [400, 401, 429, 503],
	}), jsonBody(CheckBody), async (c) => {
		const app = c.get("app");
		const evidence = c.req.valid("json");
		let purchases: Purchase[];
		try {
			purchases = await withEvidenceFields(SERVER_API_EVIDENCE_FIELDS, () => listEvidence(app, c.get("config"), evidence));
		} catch (err) {
			if (err instanceof Refusal) return c.json({ valid: false, code: err.code, message: err.message, transactions: [] });
			if (err instanceof StoreUnreachable) throw toApiError(err, { purchase_provider_reachable: false });
			throw err;
		}
		const ids = purchases.flatMap((p) => [p.transactionId, ...(p.subscriptionId ? [p.subscriptionId] : [])]);
		const holders = await holdersOf(c.env.DB, evidence.store, app.id, [...new Set(ids)]);
		const now = Date.now();
		return c.json({
			valid: true,
			transactions: purchases.map(({ raw: _raw, ...p }) => {
				// The transaction's own row, else any row of its subscription: a subscription has one owner.
				const direct = holders.get(p.transactionId);
				const viaSubscription = p.subscriptionId === null ? undefined : [...holders.values()].find((h) => h.subscriptionId === p.subscriptionId && h.userId !== null);
				return { ...p, currentState: currentState(p, now), entitled: isEntitled(p, now), owner: direct?.userId ?? viaSubscription?.userId ?? null };
			}),
		});
	})
	.get("/:store/:transactionId", describe({
		summary: "One purchase: owner, state, claim, store's answer, timeline, events, audit trail",
		description:
			"For support. `acknowledgement` is the claim's Google acknowledgement (`none` | `pending` | `done` | `abandoned`), `historySynced` whether D1 has its latest state, `timeline` the store notifications about it (or its subscription), `events` what happened to it here, `audit` every ownership change and support action.",
		tags: ["Support"],
		security: ["apiKey"],
		responses: { 200: { description: "The purchase", schema: PurchaseDetailSchema } },
		errors: [400, 401, 404, 429, 503],
	}), paramsOf(PurchaseParams), async (c) => {
		const { store, transactionId } = c.req.valid("param");
		const session = readSession(c);
		const detail = await purchaseDetail(c.env, session, c.get("app").id, store, transactionId);
		answerBookmark(c, session);
		if (!detail) throw new ApiError("not_found", "no such purchase in this app", { field: "transactionId" });
		return c.json(detail);
	});
