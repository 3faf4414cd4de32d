import * as z from "zod";
import { REFUSAL_CODES } from "../answers";
import { ERROR_CODES } from "../http/errors";
import { STORES } from "../purchase";

/**
 * What the API answers, described for /openapi.json. Requests are described by the very schemas that validate them
 * (src/http/validate.ts); answers by these, which the tests hold the handlers' real answers to (test/openapi.test.ts
 * and the end-to-end suite). Each named schema (`meta({ id })`) becomes one entry of `components.schemas`.
 */

const ms = (what: string) => z.number().int().describe(`${what} (milliseconds since the epoch)`);

export const StoreSchema = z.enum(STORES).meta({ id: "Store" });
export const StateSchema = z
	.enum(["active", "pending", "canceled", "expired", "refunded", "revoked", "in_grace_period", "on_hold", "paused", "consumed", "superseded"])
	.meta({ id: "PurchaseState", description: "What the store last said (as merged by the store's time)." });

export const RefusalCodeSchema = z.enum(REFUSAL_CODES).meta({
	id: "RefusalCode",
	description:
		"Why evidence grants nothing: a verdict, answered 200. `owned_by_another_user` is receipt sharing; `invalid_purchase` the store does not know it; the rest name the state or the mismatch.",
});

export const ErrorSchema = z
	.object({
		error: z.object({
			code: z.enum(ERROR_CODES),
			message: z.string().describe("What is wrong and, where the caller can act, what to do."),
			field: z.string().optional().describe("The request field at fault, dotted as sent (`purchaseDetails.productID`)."),
			request_id: z.string().describe("Also sent as X-Request-Id; logs carry it."),
		}),
	})
	.meta({
		id: "Error",
		description: "The one error shape of every route.",
		example: { error: { code: "invalid_request", message: "purchaseDetails.productID: must be a non-empty string", field: "purchaseDetails.productID", request_id: "9f0c6b1e-…" } },
	});

const purchaseFields = {
	appId: z.string(),
	store: StoreSchema,
	environment: z.enum(["Production", "Sandbox"]),
	transactionId: z.string().describe("Google's purchase token, or Apple's transactionId."),
	originalTransactionId: z.string().nullable(),
	subscriptionId: z.string().nullable().describe("The auto-renewing subscription it belongs to (owned as a whole)."),
	linkedTransactionId: z.string().nullable().describe("Google's linkedPurchaseToken: the purchase this one replaces."),
	orderId: z.string().nullable(),
	productId: z.string(),
	kind: z.enum(["consumable", "non_consumable", "subscription"]),
	purchasedAt: ms("When bought"),
	expiresAt: ms("When the period ends").nullable(),
	graceExpiresAt: ms("When the grace period ends").nullable(),
	willRenew: z.boolean().nullable(),
	state: StateSchema,
	quantity: z.number().int(),
	price: z.number().int().nullable().describe("Milli-units of `currency` (4990 = 4.99), where the store states it."),
	currency: z.string().nullable(),
	asOf: ms("When the store said this"),
};

export const PurchaseSchema = z
	.object({ ...purchaseFields, needsAcknowledgement: z.boolean(), userId: z.string().nullable().optional(), firstSeenAt: ms("First claimed").optional() })
	.meta({ id: "Purchase", description: "A purchase as the stores state it, normalized." });

export const HistoryEntrySchema = z
	.object({
		...purchaseFields,
		userId: z.string().nullable().describe("The owner; null while nobody has claimed it, or after a support revocation."),
		createdAt: ms("First written here"),
		updatedAt: ms("Last written here"),
		currentState: StateSchema.optional().describe("The state now: a subscription past its expiry reads expired without a store saying so."),
		entitled: z.boolean().describe("Whether it gives access now."),
	})
	.meta({ id: "HistoryEntry", description: "One purchase in the history (D1)." });

export const EntitlementSchema = z
	.object({
		id: z.string(),
		active: z.boolean(),
		state: z.string().describe("active, in_grace_period, canceled_but_running, or why not (expired, refunded, revoked, on_hold, paused, superseded, never_purchased)."),
		expiresAt: ms("When access ends").nullable(),
		productId: z.string().nullable(),
		store: StoreSchema.nullable(),
		environment: z.enum(["Production", "Sandbox"]).nullable(),
		willRenew: z.boolean().nullable(),
		purchase: z
			.object({ store: StoreSchema, transactionId: z.string(), orderId: z.string().nullable(), productId: z.string(), purchasedAt: z.number().int(), expiresAt: z.number().int().nullable(), state: StateSchema })
			.nullable(),
	})
	.meta({ id: "Entitlement" });

export const VerifyAnswerSchema = z
	.union([
		z.object({ complete_purchase: z.literal(true) }),
		z.object({ complete_purchase: z.literal(false), reason: z.string(), code: RefusalCodeSchema }),
	])
	.meta({ id: "VerifyAnswer", examples: [{ complete_purchase: true }, { complete_purchase: false, reason: "this purchase was already claimed by another user", code: "owned_by_another_user" }] });

export const ValidateAnswerSchema = z
	.object({
		success: z.boolean(),
		seen_before: z.boolean(),
		purchase_provider_reachable: z.boolean(),
		message: z.string(),
		code: RefusalCodeSchema.optional(),
		purchase: PurchaseSchema.nullable(),
		transferred_from: z.string().optional(),
		data: z.unknown().describe("The store's own answer, as received."),
	})
	.meta({ id: "ValidateAnswer" });

export const AuditEntrySchema = z
	.object({
		id: z.string(),
		transactionId: z.string(),
		appId: z.string(),
		action: z.enum(["claim", "restore_transfer", "transfer", "revoke", "reverify"]),
		fromUserId: z.string().nullable(),
		toUserId: z.string().nullable(),
		actor: z.string().describe('"user", "api-key:<app>:<n>", "console:<key name>" or "access:<e-mail>"; never a key.'),
		reason: z.string().nullable(),
		outcome: z.string().nullable().describe('A re-verification\'s result: "applied", "unchanged", "refused: <code>" or "not asked: <why>"; null for ownership changes.'),
		at: z.number().int(),
	})
	.meta({ id: "AuditEntry" });

export const TimelineEntrySchema = z
	.object({
		id: z.string().describe("Apple's notificationUUID, Pub/Sub's messageId."),
		type: z.string(),
		subtype: z.string().nullable(),
		transactionId: z.string().nullable(),
		signedAt: z.number().int().describe("The store's time for it."),
		receivedAt: z.number().int(),
		source: z.enum(["push", "catch_up"]),
	})
	.meta({ id: "TimelineEntry", description: "A store notification about the purchase." });

export const EventEntrySchema = z
	.object({ id: z.string().describe("The event's id (its webhook-id)."), type: z.string(), transactionId: z.string(), userId: z.string().nullable(), at: z.number().int() })
	.meta({ id: "EventEntry", description: "Something that happened to the purchase here (the events webhooks carry)." });

export const PurchaseDetailSchema = z
	.object({
		purchase: HistoryEntrySchema,
		owner: z.string().nullable(),
		claim: z
			.object({
				key: z.string(),
				ownerUserId: z.string().nullable(),
				revoked: z.boolean(),
				firstSeenAt: z.number().int(),
				transactions: z.number().int(),
				acknowledgement: z.enum(["none", "pending", "done", "abandoned"]).nullable(),
				acknowledgementAttempts: z.number().int(),
				consumption: z.enum(["none", "in_progress", "done"]).nullable(),
				historySynced: z.boolean().nullable(),
			})
			.nullable(),
		storeAnswer: z.unknown().describe("The store's last answer about this transaction, as received (Apple's decoded JWS payload)."),
		timeline: z.array(TimelineEntrySchema),
		events: z.array(EventEntrySchema),
		audit: z.array(AuditEntrySchema),
	})
	.meta({ id: "PurchaseDetail" });

export const KpiReportSchema = z
	.object({
		from: z.string(),
		to: z.string(),
		environment: z.enum(["Production", "Sandbox"]),
		store: StoreSchema.nullable(),
		days: z.array(
			z.object({
				day: z.string().describe("YYYY-MM-DD (UTC)"),
				newPurchases: z.number().int(),
				renewals: z.number().int(),
				refunds: z.number().int(),
				revocations: z.number().int(),
				activeSubscriptions: z.number().int().describe("Claimed subscriptions giving access at the end of the day (now, for today)."),
				refusals: z.record(z.string(), z.number().int()).describe("Refusals by code, `owned_by_another_user` being sharing attempts."),
				revenue: z.record(z.string(), z.number().int()).describe("Gross revenue by currency, in milli-units, where the store states prices."),
				refunded: z.record(z.string(), z.number().int()).describe("Refunded amounts by currency, in milli-units."),
			}),
		),
		totals: z.object({
			newPurchases: z.number().int(),
			renewals: z.number().int(),
			refunds: z.number().int(),
			revocations: z.number().int(),
			refusals: z.record(z.string(), z.number().int()),
			revenue: z.record(z.string(), z.number().int()),
			refunded: z.record(z.string(), z.number().int()),
		}),
	})
	.meta({ id: "KpiReport" });
