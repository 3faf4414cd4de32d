import { Hono } from "hono";
import * as z from "zod";
import { findApp } from "../config/load";
import { bearerToken, checkVerifyKey } from "../http/auth";
import type { AppEnv } from "../http/app";
import { ApiError } from "../http/errors";
import { parseJsonBody, parseWith } from "../http/validate";
import { grantPurchase, recordLapse } from "../ledger/grant";
import { Refusal } from "../purchase";
import type { Evidence } from "../verification";
import { verifyEvidence } from "../verification";

/**
 * POST /verify: the wrapper-app contract. 200 {"complete_purchase": true} when the purchase is valid and
 * belongs to userIdentifier; 200 {"complete_purchase": false, reason} when it is not. Anything that is not a
 * verdict (store outage, history not yet written) answers non-200 so the app retries instead of refunding.
 */

const VerifyBody = z.object({
	userIdentifier: z.string().trim().min(1, { error: "must be a non-empty string" }).max(256),
	appId: z.union([z.string().min(1), z.number().int()], { error: "must be the app's id (string or integer)" }).transform(String),
	purchaseDetails: z.object({
		verificationData: z.object({
			serverVerificationData: z.string().min(1, { error: "must be a non-empty string" }),
			localVerificationData: z.string(),
			source: z.enum(["google_play", "app_store"], { error: 'must be "google_play" or "app_store"' }),
		}),
		productID: z.string().min(1, { error: "must be a non-empty string" }).max(256),
		purchaseID: z.string().max(512).nullish(),
		status: z.enum(["purchased", "restored"], { error: 'must be "purchased" or "restored"' }),
		transactionDate: z.string().nullish(),
	}),
});
type VerifyBody = z.output<typeof VerifyBody>;

/** The Play Billing purchase JSON the app forwards; only used to pick the endpoint and to refuse early. */
const GoogleLocalData = z.looseObject({
	packageName: z.string().optional(),
	productId: z.string().optional(),
	purchaseToken: z.string().optional(),
	autoRenewing: z.boolean().optional(),
});

export const verifyRoutes = new Hono<AppEnv>().post("/", async (c) => {
	const body = await parseJsonBody(c, VerifyBody);
	const config = c.get("config");
	const app = findApp(config, body.appId);
	if (!app) throw new ApiError("invalid_request", `appId: no app "${body.appId}" is configured`, { field: "appId" });
	await checkVerifyKey(app, c.req.query("key") ?? c.req.header("x-verify-key") ?? bearerToken(c.req.header("authorization")));

	const log = c.get("log");
	try {
		const evidence = evidenceFrom(body, app.google?.packageName);
		const purchase = await verifyEvidence(app, config, evidence);
		const grant = await grantPurchase(c.env, purchase, body.userIdentifier);
		log.info("verify_granted", { app: app.id, store: purchase.store, product: purchase.productId, seen_before: grant.seenBefore });
		return c.json({ complete_purchase: true });
	} catch (err) {
		if (err instanceof Refusal) {
			log.info("verify_refused", { app: app.id, code: err.code, reason: err.message });
			await recordLapse(c.env, err, log);
			return c.json({ complete_purchase: false, reason: err.message, code: err.code });
		}
		throw err;
	}
});

function evidenceFrom(body: VerifyBody, packageName: string | undefined): Evidence {
	const { verificationData, productID, purchaseID } = body.purchaseDetails;
	if (verificationData.source === "app_store") {
		// StoreKit 2 hands the app a signed transaction (a compact JWS); StoreKit 1 an app receipt (base64).
		// purchaseID picks the claimed transaction out of a receipt, or is looked up on its own.
		const data = verificationData.serverVerificationData.trim();
		const isJws = /^[\w-]+\.[\w-]+\.[\w-]+$/.test(data);
		return {
			store: "app_store",
			productId: productID,
			userId: body.userIdentifier,
			...(isJws ? { signedTransaction: data } : { receipt: data }),
			...(purchaseID ? { transactionId: purchaseID } : {}),
		};
	}
	let json: unknown;
	try {
		json = JSON.parse(verificationData.localVerificationData);
	} catch {
		throw new ApiError("invalid_request", "purchaseDetails.verificationData.localVerificationData: must be the Play purchase JSON", {
			field: "purchaseDetails.verificationData.localVerificationData",
		});
	}
	const local = parseWith(GoogleLocalData, json, "purchaseDetails.verificationData.localVerificationData");
	// The app's own JSON is not evidence, but when it contradicts the claim there is nothing to ask Google about.
	if (local.packageName !== undefined && packageName !== undefined && local.packageName !== packageName) {
		throw new Refusal("app_mismatch", `the purchase is for package ${local.packageName}, not this app's`);
	}
	if (local.productId !== undefined && local.productId !== productID) {
		throw new Refusal("product_mismatch", `the purchase JSON is for product ${local.productId}, not ${productID}`);
	}
	return {
		store: "google_play",
		productId: productID,
		purchaseToken: verificationData.serverVerificationData,
		typeHint: local.autoRenewing === undefined ? "product" : "subscription",
	};
}
