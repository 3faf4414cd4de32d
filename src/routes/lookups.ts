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
import { parseJsonBody, parseWith } from "../http/validate";
import { auditOf } from "../ledger/audit";
import { claimStub } from "../ledger/grant";
import { findPurchase, findPurchasesBy, holdersOf, type HistoryEntry } from "../ledger/history";
import { timelineOf } from "../ledger/notifications";
import { currentState, isEntitled, STORES, type Purchase } from "../purchase";
import { listEvidence, type Evidence } from "../verification";

/**
 * Look-ups for support and backends (API key):
 *   GET  /v1/purchases/{store}/{transactionId}   one purchase: owner, state, the claim's state, timeline, audit trail
 *   GET  /v1/purchases?orderId=… | ?originalTransactionId=…
 *   POST /v1/purchases/check                      what evidence holds and who holds it, claiming nothing
 */

const StoreParam = z.enum(STORES, { error: `must be one of ${STORES.map((s) => `"${s}"`).join(", ")}` });
const PurchaseParams = z.object({ store: StoreParam, transactionId: z.string().min(1).max(1024) });

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

/** A history row as the API shows it, with whether it gives access now. */
function shown(entry: HistoryEntry, now = Date.now()) {
	return { ...entry, currentState: currentState(entry, now), entitled: isEntitled(entry, now) };
}

export const lookupRoutes = new Hono<ApiEnv>()
	.get("/", async (c) => {
		const query = parseWith(SearchQuery, c.req.query());
		const session = readSession(c);
		const found = await findPurchasesBy(session, c.get("app").id, query.orderId !== undefined ? { orderId: query.orderId } : { originalTransactionId: query.originalTransactionId! });
		answerBookmark(c, session);
		return c.json({ purchases: found.map((entry) => shown(entry)) });
	})
	.post("/check", async (c) => {
		const app = c.get("app");
		const evidence = await parseJsonBody(c, CheckBody);
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
	.get("/:store/:transactionId", async (c) => {
		const app = c.get("app");
		const { store, transactionId } = parseWith(PurchaseParams, c.req.param());
		const session = readSession(c);
		const entry = await findPurchase(session, store, transactionId);
		answerBookmark(c, session);
		if (!entry || entry.appId !== app.id) throw new ApiError("not_found", "no such purchase in this app", { field: "transactionId" });
		const claimId = entry.subscriptionId ?? entry.transactionId;
		const [claim, timeline, audit] = await Promise.all([
			claimStub(c.env, store, claimId).record(),
			timelineOf(c.env.DB, store, transactionId, entry.subscriptionId),
			auditOf(c.env.DB, store, claimId),
		]);
		const held = claim?.transactions.find((t) => t.purchase.transactionId === transactionId);
		return c.json({
			purchase: shown(entry),
			owner: entry.userId,
			claim: claim
				? {
						key: claim.key,
						ownerUserId: claim.userId,
						revoked: claim.revoked,
						firstSeenAt: claim.firstSeenAt,
						transactions: claim.transactions.length,
						acknowledgement: held?.ackState ?? null,
						acknowledgementAttempts: held?.ackAttempts ?? 0,
						consumption: held?.consumeState ?? null,
						historySynced: held?.historySynced ?? null,
					}
				: null,
			timeline,
			audit,
		});
	});
