import { Hono, type Context } from "hono";
import type { RegisteredServiceAccount } from "./config";
import { authenticate } from "./google-auth";
import { storeEndpoint } from "./store-endpoint";
import { googlePurchases, productPurchaseResource, subscriptionPurchaseV2Resource, type GooglePurchase } from "./google-purchases";
import { listVoided } from "./google-voided";

/**
 * The androidpublisher v3 endpoints the service uses, answering with Google's resources and Google's error
 * envelope. Mounted at {googlePlay}/androidpublisher/v3/applications. voidedpurchases.list: google-voided.ts.
 */

type Status = 400 | 401 | 403 | 404 | 410;
const REASONS: Record<Status, [string, string, string]> = {
	400: ["invalid", "Invalid Value", "INVALID_ARGUMENT"],
	401: ["authError", "Request had invalid authentication credentials. Expected OAuth 2 access token.", "UNAUTHENTICATED"],
	403: ["permissionDenied", "The caller does not have permission", "PERMISSION_DENIED"],
	404: ["purchaseTokenNotFound", "The purchase token was not found.", "NOT_FOUND"],
	410: ["purchaseTokenNoLongerValid", "The purchase token is no longer valid.", "NOT_FOUND"],
};

export function googleError(c: Context, status: Status, message?: string) {
	const [reason, defaultMessage, canonical] = REASONS[status];
	const text = message ?? defaultMessage;
	return c.json({ error: { code: status, message: text, errors: [{ message: text, domain: "androidpublisher", reason }], status: canonical } }, status);
}

export function googleApi(accounts: (c: Context) => RegisteredServiceAccount[]) {
	const api = new Hono();

	/** Authenticates the bearer token and finds the purchase, or answers as Google does. */
	function lookup(c: Context, packageName: string, token: string, expect: { type: GooglePurchase["type"]; productId?: string }) {
		const account = authenticate(c.req.header("authorization"), accounts(c));
		if (!account) return { response: googleError(c, 401) };
		if (!account.packages.includes(packageName)) return { response: googleError(c, 403) };
		const purchase = googlePurchases.get(token);
		if (!purchase) return { response: googleError(c, 404) };
		if (purchase.gone) return { response: googleError(c, 410) };
		// A token presented for another app, product or purchase type is an invalid value to Google.
		if (purchase.packageName !== packageName || purchase.type !== expect.type) return { response: googleError(c, 400) };
		if (expect.productId !== undefined && purchase.productId !== expect.productId) return { response: googleError(c, 400) };
		return { purchase };
	}

	api.get("/:packageName/purchases/products/:productId/tokens/:token", storeEndpoint("google.products.get"), (c) => {
		const { packageName, productId, token } = c.req.param() as { packageName: string; productId: string; token: string };
		const found = lookup(c, packageName, token, { type: "product", productId });
		return found.response ?? c.json(productPurchaseResource(found.purchase));
	});

	api.post("/:packageName/purchases/products/:productId/tokens/:action{[^/]+:(acknowledge|consume)}", async (c, next) => {
		const action = (c.req.param("action") ?? "").endsWith(":consume") ? "consume" : "acknowledge";
		return storeEndpoint(`google.products.${action}`)(c, next);
	}, async (c) => {
		const { packageName, productId, action } = c.req.param() as { packageName: string; productId: string; action: string };
		const [token, verb] = action.split(":") as [string, string];
		const found = lookup(c, packageName, token, { type: "product", productId });
		if (found.response) return found.response;
		const purchase = found.purchase;
		if (purchase.state !== "purchased") return googleError(c, 400, "The purchase is not in a valid state to perform the desired operation.");
		if (verb === "consume") {
			if (purchase.consumed) return googleError(c, 400, "The purchase is not in a valid state to perform the desired operation.");
			purchase.consumed = true;
		} else {
			purchase.acknowledged = true;
		}
		return c.body(null, 200);
	});

	api.get("/:packageName/purchases/subscriptionsv2/tokens/:token", storeEndpoint("google.subscriptionsv2.get"), (c) => {
		const { packageName, token } = c.req.param() as { packageName: string; token: string };
		const found = lookup(c, packageName, token, { type: "subscription" });
		return found.response ?? c.json(subscriptionPurchaseV2Resource(found.purchase));
	});

	api.post("/:packageName/purchases/subscriptions/:productId/tokens/:action{[^/]+:acknowledge}", storeEndpoint("google.subscriptions.acknowledge"), (c) => {
		const { packageName, productId, action } = c.req.param() as { packageName: string; productId: string; action: string };
		const token = action.slice(0, -":acknowledge".length);
		const found = lookup(c, packageName, token, { type: "subscription", productId });
		if (found.response) return found.response;
		found.purchase.acknowledged = true;
		return c.body(null, 200);
	});

	api.get("/:packageName/purchases/voidedpurchases", storeEndpoint("google.voidedpurchases.list"), listVoided(accounts, googleError));

	return api;
}
