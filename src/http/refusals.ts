import type { Context } from "hono";
import type { Refusal } from "../answers";
import { countRefusal } from "../ledger/event-log";
import type { Store } from "../purchase";
import type { AppEnv } from "./app";

/**
 * Counts a refusal for the KPIs (refusals by code; `owned_by_another_user` is a sharing attempt) after the answer is
 * sent: the verdict never waits for the count, and a count D1 could not take is logged, not retried.
 */
export function countRefusalAfter<E extends AppEnv>(c: Context<E>, appId: string, store: Store, refusal: Refusal): void {
	const counting = countRefusal(c.env.DB, appId, store, refusal.code, refusal.held?.purchase.environment ?? null).catch((err: unknown) =>
		c.get("log").warn("refusal_not_counted", { code: refusal.code, error: err }),
	);
	c.executionCtx.waitUntil(counting);
}
