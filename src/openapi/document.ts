import type { Hono } from "hono";
import { generateSpecs } from "hono-openapi";

/**
 * The OpenAPI 3.1 document of every route the app mounts, built from the routes themselves: the zod schemas that
 * validate each request (src/http/validate.ts) and each route's own description (src/openapi/describe.ts). Built
 * once per isolate, on the first request for it.
 */

export const TAGS = [
	{ name: "Verification", description: "Is this purchase real, whose is it, and is it active? Every transaction is claimed exactly once." },
	{ name: "Users", description: "What a user has: history, entitlements, one yes/no." },
	{ name: "Support", description: "Look-ups and actions for support staff; every action is in the purchase's audit trail." },
	{ name: "Notifications", description: "The stores' server notifications (called by Apple and Google)." },
	{ name: "Events", description: "Webhook delivery log and live sockets." },
	{ name: "KPIs", description: "Counts by day: purchases, renewals, refunds, refusals, revenue." },
	{ name: "Operations", description: "Health and this description." },
	{ name: "Console", description: "The support console's HTML pages (a browser's session cookie, or Cloudflare Access)." },
];

const SECURITY_SCHEMES = {
	apiKey: { type: "http", scheme: "bearer", description: "One of the app's `apiKeys` (APPS_CONFIG): `Authorization: Bearer <key>`. The key decides the app." },
	verifyKey: { type: "apiKey", in: "query", name: "key", description: "One of the app's `verifyKeys`, for apps that set them (wrapper apps cannot always set headers)." },
	verifyKeyHeader: { type: "apiKey", in: "header", name: "X-Verify-Key", description: "The verify key as a header." },
	pubsubOidc: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "The OIDC token Pub/Sub signs for an authenticated push subscription." },
	consoleSession: { type: "apiKey", in: "cookie", name: "iap_console", description: "The console's session, from signing in with a console key." },
	cloudflareAccess: { type: "apiKey", in: "header", name: "Cf-Access-Jwt-Assertion", description: "Cloudflare Access's JWT, set by Access in front of the Worker." },
} as const;

const cache = new WeakMap<Hono, Promise<unknown>>();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function openApiDocument(app: Hono<any, any, any>): Promise<unknown> {
	let document = cache.get(app);
	if (!document) {
		document = generateSpecs(app, {
			documentation: {
				info: {
					title: "iap-edge",
					version: "1",
					description:
						"In-app purchase verification at the edge: App Store and Google Play purchases verified with the stores, claimed exactly once, and kept in D1. " +
						"Refusals are verdicts (200 with a `code`); an outage is 503 with Retry-After, never a false no. Every error has one shape (`Error`).",
				},
				tags: TAGS,
				components: { securitySchemes: SECURITY_SCHEMES },
			},
			// Every operation must say what it answers: there is no generic 400 beside our own error shape.
			defaultValidationErrorResponse: false,
			// /openapi.json is a route like any other, not a static file.
			excludeStaticFile: false,
		});
		cache.set(app, document);
		// A failed build is not kept: the next request tries again.
		document.catch(() => cache.delete(app));
	}
	return document;
}
