import { Hono } from "hono";
import { accessCerts, accessToken } from "./access";
import { webhookReceiver } from "./webhook-receiver";
import { admin } from "./admin";
import { amazonRvs } from "./amazon-rvs";
import { amazonSns } from "./amazon-sns";
import { appleApi } from "./apple-api";
import { appleReceipts } from "./apple-receipts";
import { configOf, emulatorConfig, type EmulatorEnv } from "./config";
import { googleApi } from "./google-api";
import { handleTokenRequest, subjectOfTokenRequest } from "./google-auth";
import { certs } from "./google-oidc";
import { storeEndpoint } from "./store-endpoint";

/**
 * The store emulator: a Worker that answers like Google's OAuth and Play Developer API and Apple's App Store
 * Server API and verifyReceipt, checking the credentials it is sent (EMULATOR_CONFIG, config.ts), and sends the
 * stores' notifications to the service (notifications.ts). Tests reach it through Miniflare's outbound service;
 * `npm run dev` runs it on port 8788. Paths mirror the real ones under a store prefix:
 *   {base}/google/token                                   ← a service account's token_uri
 *   {base}/google/oauth2/v3/certs                         ← endpoints.googleCerts (Pub/Sub push OIDC keys)
 *   {base}/google/androidpublisher/v3/applications/...    ← endpoints.googlePlay = {base}/google
 *   {base}/apple/production/inApps/v1/...                  ← endpoints.appleProduction
 *   {base}/apple/sandbox/inApps/v1/...                     ← endpoints.appleSandbox
 *   {base}/apple/receipt/{production,sandbox}/verifyReceipt ← endpoints.appleReceiptProduction / appleReceiptSandbox
 *   {base}/amazon[/sandbox]/version/1.0/verifyReceiptId/...  ← endpoints.amazon (RVS, production and Cloud Sandbox)
 *   {base}/amazon/sns/...                                 ← Amazon SNS: the signing certificate, ConfirmSubscription
 *   {base}/access/cdn-cgi/access/certs                    ← Cloudflare Access's keys (console.access.teamDomain = {base}/access)
 *   {base}/_emulator/...                                  ← admin: create and change purchases, notifications, faults, counters
 */

const app = new Hono<{ Bindings: EmulatorEnv }>();

// Only requests meant for the emulator are answered: in tests every outbound fetch of the service lands here,
// and one addressed anywhere else is a test bug, not a store call.
app.use("*", async (c, next) => {
	const host = new URL(c.req.url).hostname;
	// And the SNS host it plays (in tests https://sns.<region>.amazonaws.com, which the service accepts by default).
	const sns = emulatorConfig(c.env).amazon.sns?.url;
	if (host !== "localhost" && host !== "127.0.0.1" && !host.endsWith(".test") && (sns === undefined || host !== new URL(sns).hostname)) {
		return c.json({ error: `store emulator: unexpected outbound request to ${host}` }, 421);
	}
	await next();
});

app.post("/google/token", storeEndpoint("google.token", subjectOfTokenRequest), (c) => handleTokenRequest(c, configOf(c).google.serviceAccounts));
app.get("/google/oauth2/v3/certs", storeEndpoint("google.certs"), certs);
app.route("/google/androidpublisher/v3/applications", googleApi((c) => configOf(c).google.serviceAccounts));
app.route("/apple/production", appleApi("Production"));
app.route("/apple/sandbox", appleApi("Sandbox"));
app.route("/apple/receipt", appleReceipts());
app.route("/amazon/sns", amazonSns);
app.route("/amazon", amazonRvs);
app.get("/access/cdn-cgi/access/certs", storeEndpoint("access.certs"), accessCerts);
app.post("/_emulator/access/token", accessToken);
app.route("/_emulator/webhooks", webhookReceiver);
app.route("/_emulator", admin);
app.notFound((c) => c.json({ error: { code: 404, message: `store emulator: no such endpoint ${c.req.method} ${new URL(c.req.url).pathname}`, status: "NOT_FOUND" } }, 404));

export default app;
