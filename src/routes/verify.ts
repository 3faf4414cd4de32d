import { Hono } from "hono";
import * as z from "zod";
import { Refusal } from "../answers";
import { findApp } from "../config/load";
import { bearerToken, checkVerifyKey } from "../http/auth";
import type { AppEnv } from "../http/app";
import { ApiError, withEvidenceFields } from "../http/errors";
import {
	amazonUserIdField,
	appleEvidence,
	isCompactJws,
	productIdField,
	purchaseTokenField,
	receiptField,
	receiptIdField,
	signedTransactionField,
	transactionIdField,
	userIdField,
} from "../http/fields";
import { enforceRateLimit } from "../http/rate-limit";
import { countRefusalAfter } from "../http/refusals";
import { BOOKMARK_HEADER } from "../http/session";
import { jsonBody } from "../http/validate";
import { describe } from "../openapi/describe";
import { VerifyAnswerSchema } from "../openapi/schemas";
import { grantEvidence, type Upstream } from "../grant-evidence";
import type { Evidence } from "../verification";

/**
 * POST /verify: the wrapper-app contract. 200 {"complete_purchase": true} when the purchase is valid and
 * belongs to userIdentifier; 200 {"complete_purchase": false, reason} when it is not. Anything that is not a
 * verdict (store outage, history not yet written) answers non-200 so the app retries instead of refunding.
 */

const SERVER_DATA = "purchaseDetails.verificationData.serverVerificationData";
const LOCAL_DATA = "purchaseDetails.verificationData.localVerificationData";

/** The Play Billing purchase JSON the app forwards; only used to pick the endpoint and to refuse early. */
const GoogleLocalData = z.looseObject({
	packageName: z.string().optional(),
	productId: z.string().optional(),
	purchaseToken: z.string().optional(),
	autoRenewing: z.boolean().optional(),
});

/**
 * What the Amazon Appstore SDK gives the app besides the receipt id: its UserData (`userId`, `marketplace`), as JSON.
 * RVS answers only for the receipt's own Amazon user, so the user id is needed to ask; it proves nothing by itself.
 */
const AmazonLocalData = z.looseObject({ userId: amazonUserIdField });

const VerifyBody = z
	.object({
		userIdentifier: userIdField,
		appId: z.union([z.string().min(1).max(256), z.number().int()], { error: "must be the app's id (string or integer)" }).transform(String),
		purchaseDetails: z.object({
			verificationData: z.object({
				serverVerificationData: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
				localVerificationData: z.string({ error: "must be a string" }).max(64 * 1024),
				source: z.enum(["google_play", "app_store", "amazon"], { error: 'must be "google_play", "app_store" or "amazon"' }),
			}),
			productID: productIdField,
			purchaseID: z.string().max(512).nullish(),
			status: z.enum(["purchased", "restored"], { error: 'must be "purchased" or "restored"' }),
			transactionDate: z.string().max(64).nullish(),
		}),
	})
	.transform((body, ctx) => {
		const { verificationData, productID, purchaseID } = body.purchaseDetails;
		/** The value as `schema` reads it, or undefined with the problem reported at `path`. */
		function check<T>(schema: z.ZodType<T>, value: unknown, path: string): T | undefined {
			const parsed = schema.safeParse(value);
			const problem = parsed.error?.issues[0];
			if (problem) ctx.addIssue({ code: "custom", path: [...path.split("."), ...problem.path.map(String)], message: problem.message });
			return parsed.data;
		}
		const userId = body.userIdentifier;
		/** localVerificationData as JSON, or undefined with the problem reported. */
		function parseJson(text: string, problem: string): unknown {
			try {
				return JSON.parse(text);
			} catch {
				ctx.addIssue({ code: "custom", path: LOCAL_DATA.split("."), message: problem });
				return undefined;
			}
		}
		let evidence: Evidence | undefined;
		if (verificationData.source === "app_store") {
			// StoreKit 2 hands the app a signed transaction (a compact JWS); StoreKit 1 an app receipt (base64).
			// purchaseID picks the claimed transaction out of a receipt when it is a transaction id.
			const data = verificationData.serverVerificationData.trim();
			const jws = isCompactJws(data);
			const checked = check(jws ? signedTransactionField : receiptField, data, SERVER_DATA);
			const transactionId = transactionIdField.safeParse(purchaseID ?? undefined).data;
			if (checked !== undefined) evidence = appleEvidence({ productId: productID, userId, transactionId, ...(jws ? { signedTransaction: checked } : { receipt: checked }) });
		} else if (verificationData.source === "amazon") {
			// An extension of the wrapper contract: the receipt id, and the Appstore SDK's UserData as JSON.
			const receiptId = check(receiptIdField, verificationData.serverVerificationData, SERVER_DATA);
			const json = parseJson(verificationData.localVerificationData, 'must be the Appstore SDK\'s UserData as JSON, e.g. {"userId": "..."}');
			const local = json === undefined ? undefined : check(AmazonLocalData, json, LOCAL_DATA);
			if (receiptId !== undefined && local !== undefined) evidence = { store: "amazon", productId: productID, receiptId, amazonUserId: local.userId };
		} else {
			const token = check(purchaseTokenField, verificationData.serverVerificationData, SERVER_DATA);
			const json = parseJson(verificationData.localVerificationData, "must be the Play purchase JSON");
			const local = json === undefined ? undefined : check(GoogleLocalData, json, LOCAL_DATA);
			if (token !== undefined && local !== undefined) {
				evidence = {
					store: "google_play",
					productId: productID,
					purchaseToken: token,
					typeHint: local.autoRenewing === undefined ? "product" : "subscription",
					appSays: { packageName: local.packageName, productId: local.productId },
				};
			}
		}
		if (evidence === undefined) return z.NEVER;
		return { appId: body.appId, userId, evidence, restore: body.purchaseDetails.status === "restored" };
	});

export const verifyRoutes = new Hono<AppEnv>().post("/", describe({
	summary: "Verify a purchase for a user (the wrapper-app contract)",
	description:
		"Verifies the evidence with its store, claims the purchase for `userIdentifier` (once: anyone else is refused `owned_by_another_user`) and records it. " +
		"`200 {complete_purchase: true}` grants; `200 {complete_purchase: false, code}` is a verdict; anything non-200 means no verdict could be had: retry, never refund. " +
		"Apps that set `verifyKeys` send one as `?key=`, `X-Verify-Key` or a Bearer token.",
	tags: ["Verification"],
	security: ["verifyKey", "verifyKeyHeader"],
	responses: {
		200: {
			description: "A verdict",
			schema: VerifyAnswerSchema,
			examples: {
				granted: { summary: "valid, active, this product, this user", value: { complete_purchase: true } },
				sharing: { summary: "claimed by another user", value: { complete_purchase: false, reason: "this purchase was already claimed by another user", code: "owned_by_another_user" } },
			},
		},
	},
	errors: [400, 401, 413, 429, 503],
}), jsonBody(VerifyBody), async (c) => {
	const { appId, userId, evidence, restore } = c.req.valid("json");
	const config = c.get("config");
	const app = findApp(config, appId);
	if (!app) throw new ApiError("invalid_request", `appId: no app "${appId}" is configured`, { field: "appId" });
	// Counted before the verify key is checked, so guessing keys is limited too.
	await enforceRateLimit(c.env.VERIFY_RATE_LIMITER, `${app.id}:${c.req.header("cf-connecting-ip") ?? "unknown"}`, "from this address for this app");
	await checkVerifyKey(app, c.req.query("key") ?? c.req.header("x-verify-key") ?? bearerToken(c.req.header("authorization")));

	const log = c.get("log");
	const trace: { upstream?: Upstream } = {};
	try {
		const grant = await withEvidenceFields(
			{
				purchaseToken: SERVER_DATA,
				signedTransaction: SERVER_DATA,
				receipt: SERVER_DATA,
				transactionId: "purchaseDetails.purchaseID",
				receiptId: SERVER_DATA,
				amazonUserId: `${LOCAL_DATA}.userId`,
				store: "purchaseDetails.verificationData.source",
			},
			() => grantEvidence(c.env, app, config, evidence, userId, { restore }, trace),
		);
		log.info("verify_granted", { app: app.id, store: grant.purchase.store, product: grant.purchase.productId, seen_before: grant.seenBefore, transferred: grant.transferredFrom !== null, upstream: trace.upstream });
		if (grant.bookmark) c.header(BOOKMARK_HEADER, grant.bookmark);
		return c.json({ complete_purchase: true });
	} catch (err) {
		if (err instanceof Refusal) {
			log.info("verify_refused", { app: app.id, code: err.code, reason: err.message, upstream: trace.upstream });
			countRefusalAfter(c, app.id, evidence.store, err);
			return c.json({ complete_purchase: false, reason: err.message, code: err.code });
		}
		throw err;
	}
});
