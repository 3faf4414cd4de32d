import { Hono } from "hono";
import * as z from "zod";
import type { ApiEnv } from "../http/auth";
import { ApiError } from "../http/errors";
import { userIdField } from "../http/fields";
import { jsonBody, paramsOf } from "../http/validate";
import { movePurchase } from "../ledger/ownership";
import { reverifyPurchase } from "../lifecycle/reverify";
import { describe } from "../openapi/describe";
import { STORES } from "../purchase";
import { PurchaseParams } from "./lookups";

/**
 * Support actions (API key), through the purchase's claim so they cannot race a user's claim into two owners, and
 * audited with who did it (the API key's id, never the key), when and why:
 *   POST /v1/purchases/{store}/{transactionId}/transfer  {"toUserId", "reason"}  move it (a whole subscription) to a user
 *   POST /v1/purchases/{store}/{transactionId}/revoke    {"reason"}              take it from everyone until transferred
 *   POST /v1/purchases/{store}/{transactionId}/reverify  {"reason"}              ask the store about it now
 */

const reason = z
	.string({ error: "say why: it is kept in the audit trail" })
	.trim()
	.min(1, { error: "say why: it is kept in the audit trail" })
	.max(1000)
	.describe("Why: kept in the audit trail.");
export const TransferBody = z.object({ toUserId: userIdField.describe("Who gets it."), reason }).meta({ example: { toUserId: "new-account-42", reason: "ticket 4711: reinstalled with a new account" } });
export const ReasonBody = z.object({ reason }).meta({ example: { reason: "ticket 4712: chargeback confirmed by the bank" } });

const MoveAnswer = z.object({
	store: z.enum(STORES),
	transactionId: z.string(),
	claim: z.string().describe("The claim's key: the transaction id, or the subscription id (a subscription moves as a whole)."),
	fromUserId: z.string().nullable(),
	toUserId: z.string().nullable(),
	action: z.enum(["transfer", "revoke"]),
});

const ReverifyAnswer = z.object({
	store: z.enum(STORES),
	transactionId: z.string(),
	status: z.enum(["applied", "unchanged", "refused"]).describe("applied: the store said something new; unchanged: the history already held it; refused: the store no longer vouches for it (nothing changed)."),
	before: z.string(),
	after: z.string().optional(),
	code: z.string().optional(),
	message: z.string().optional(),
});

export const supportRoutes = new Hono<ApiEnv>()
	.post("/:store/:transactionId/transfer", describe({
		summary: "Move a purchase (a whole subscription) to a user",
		description: "Through the purchase's claim, so a move racing users' claims still ends with one owner; audited with the API key's id and the reason.",
		tags: ["Support"],
		security: ["apiKey"],
		responses: { 200: { description: "Moved", schema: MoveAnswer, example: { store: "app_store", transactionId: "1000000000000001", claim: "1000000000000001", fromUserId: "apple-user", toUserId: "new-account-42", action: "transfer" } } },
		errors: [400, 401, 404, 429, 503],
	}), paramsOf(PurchaseParams), jsonBody(TransferBody), async (c) => {
		const { toUserId, reason } = c.req.valid("json");
		const { store, transactionId } = c.req.valid("param");
		return c.json(moved(await movePurchase(c.env, c.get("app").id, c.get("apiKeyId"), store, transactionId, toUserId, reason)));
	})
	.post("/:store/:transactionId/revoke", describe({
		summary: "Take a purchase from everyone",
		description: "Refused as `revoked` to anyone until a transfer gives it to someone. Audited.",
		tags: ["Support"],
		security: ["apiKey"],
		responses: { 200: { description: "Revoked", schema: MoveAnswer, example: { store: "app_store", transactionId: "1000000000000001", claim: "1000000000000001", fromUserId: "apple-user", toUserId: null, action: "revoke" } } },
		errors: [400, 401, 404, 429, 503],
	}), paramsOf(PurchaseParams), jsonBody(ReasonBody), async (c) => {
		const { reason } = c.req.valid("json");
		const { store, transactionId } = c.req.valid("param");
		return c.json(moved(await movePurchase(c.env, c.get("app").id, c.get("apiKeyId"), store, transactionId, null, reason)));
	})
	.post("/:store/:transactionId/reverify", describe({
		summary: "Ask the store about a purchase now",
		description:
			"Google by purchase token, the App Store by transaction id (needs the app's App Store Server API key), Amazon by receipt id and the Amazon user id RVS last confirmed it for (409 if the service has none). What the store says is applied like a notification (never moving a purchase back in time; the owner stays), and the request is audited.",
		tags: ["Support"],
		security: ["apiKey"],
		responses: { 200: { description: "What the store said", schema: ReverifyAnswer, example: { store: "google_play", transactionId: "<token>", status: "applied", before: "active", after: "refunded" } } },
		errors: [400, 401, 404, 409, 429, 503],
	}), paramsOf(PurchaseParams), jsonBody(ReasonBody), async (c) => {
		const { reason } = c.req.valid("json");
		const { store, transactionId } = c.req.valid("param");
		const outcome = await reverifyPurchase(c.env, c.get("app"), c.get("config"), store, transactionId, c.get("apiKeyId"), reason);
		if (outcome.status === "not_found") throw new ApiError("not_found", "no such purchase in this app", { field: "transactionId" });
		if (outcome.status === "cannot_ask") throw new ApiError("conflict", outcome.message, { field: "transactionId" });
		return c.json({ store, transactionId, ...outcome });
	});

function moved(outcome: Awaited<ReturnType<typeof movePurchase>>) {
	if (outcome.status === "not_found") throw new ApiError("not_found", outcome.message, { field: "transactionId" });
	const { status: _status, ...answer } = outcome;
	return answer;
}
