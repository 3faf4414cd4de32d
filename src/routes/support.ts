import { Hono } from "hono";
import * as z from "zod";
import { HistoryUnavailable, Misconfigured } from "../answers";
import type { ApiEnv } from "../http/auth";
import { ApiError } from "../http/errors";
import { userIdField } from "../http/fields";
import { parseJsonBody, parseWith } from "../http/validate";
import { claimStub } from "../ledger/grant";
import { findPurchase } from "../ledger/history";
import { APPLY_MIGRATIONS } from "../ledger/schema";
import { STORES } from "../purchase";

/**
 * Support actions (API key), through the purchase's claim so they cannot race a user's claim into two owners, and
 * audited with who did it (the API key's id, never the key), when and why:
 *   POST /v1/purchases/{store}/{transactionId}/transfer  {"toUserId", "reason"}  move it (a whole subscription) to a user
 *   POST /v1/purchases/{store}/{transactionId}/revoke    {"reason"}              take it from everyone until transferred
 */

const Params = z.object({ store: z.enum(STORES, { error: `must be one of ${STORES.map((s) => `"${s}"`).join(", ")}` }), transactionId: z.string().min(1).max(1024) });
const reason = z.string({ error: "say why: it is kept in the audit trail" }).trim().min(1, { error: "say why: it is kept in the audit trail" }).max(1000);
const TransferBody = z.object({ toUserId: userIdField, reason });
const RevokeBody = z.object({ reason });

export const supportRoutes = new Hono<ApiEnv>()
	.post("/:store/:transactionId/transfer", async (c) => {
		const { toUserId, reason } = await parseJsonBody(c, TransferBody);
		return c.json(await move(c.env, c.get("app").id, c.get("apiKeyId"), parseWith(Params, c.req.param()), toUserId, reason));
	})
	.post("/:store/:transactionId/revoke", async (c) => {
		const { reason } = await parseJsonBody(c, RevokeBody);
		return c.json(await move(c.env, c.get("app").id, c.get("apiKeyId"), parseWith(Params, c.req.param()), null, reason));
	});

async function move(env: Env, appId: string, actor: string, target: z.output<typeof Params>, toUserId: string | null, reason: string) {
	const entry = await findPurchase(env.DB, target.store, target.transactionId);
	if (!entry || entry.appId !== appId) throw new ApiError("not_found", "no such purchase in this app", { field: "transactionId" });
	const claimId = entry.subscriptionId ?? entry.transactionId;
	const outcome = await claimStub(env, target.store, claimId).transfer(toUserId, actor, reason, target.transactionId);
	if (outcome.status === "unknown") throw new ApiError("not_found", "this purchase has no claim yet: nothing to move", { field: "transactionId" });
	if (outcome.history === "schema_missing") throw new Misconfigured(`the change is made, but D1 has no schema: ${APPLY_MIGRATIONS}`);
	if (outcome.history === "unavailable") throw new HistoryUnavailable("the change is made and will reach the history shortly; it is safe to repeat");
	return { store: target.store, transactionId: target.transactionId, claim: claimId, fromUserId: outcome.fromUserId, toUserId: outcome.toUserId, action: toUserId === null ? "revoke" : "transfer" };
}
