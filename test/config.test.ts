import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { APPLE_ROOT_CA_G3 } from "../src/apple/roots";
import { emulator, googleVerifyBody, json } from "./support/service.ts";

/** A deployment with a bad APPS_CONFIG answers every request with what to fix, never a crash and never a secret. */

async function fetchWith(appsConfig: string | undefined, path = "/verify", init: RequestInit = { method: "POST", body: "{}" }) {
	const ctx = createExecutionContext();
	const response = await worker.fetch(new Request(`https://iap-edge.test${path}`, init), { ...env, APPS_CONFIG: appsConfig as string }, ctx);
	await waitOnExecutionContext(ctx);
	return { status: response.status, body: await json(response) };
}

const SECRET = "-----BEGIN PRIVATE KEY-----\\nTOP-SECRET-MATERIAL\\n-----END PRIVATE KEY-----";

function configWith(app: Record<string, unknown>) {
	return JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false, ...app }] });
}

describe("a deployment without APPS_CONFIG", () => {
	it("answers 503 saying how to set it", async () => {
		const { status, body } = await fetchWith(undefined);
		expect(status).toBe(503);
		expect(body.error).toMatchObject({ code: "misconfigured", message: expect.stringContaining("wrangler secret put APPS_CONFIG") });
	});
});

describe("a deployment whose APPS_CONFIG is not JSON", () => {
	it("says so without quoting it", async () => {
		const { status, body } = await fetchWith(`{"apps": [${SECRET}`);
		expect(status).toBe(503);
		expect(body.error.message).toContain("not valid JSON");
		expect(JSON.stringify(body)).not.toContain("TOP-SECRET");
	});
});

describe("a deployment with a wrong field", () => {
	it.each([
		["apps[0].google.serviceAccount.private_key", configWith({ google: { packageName: "com.example.a", serviceAccount: { client_email: "a@b.iam.gserviceaccount.com", private_key: "TOP-SECRET-NOT-PEM", token_uri: "https://oauth2.googleapis.com/token" } } })],
		["apps[0].google.packageName", configWith({ google: { packageName: "not a package", serviceAccount: { client_email: "a@b.iam.gserviceaccount.com", private_key: SECRET, token_uri: "https://x.test/token" } } })],
		["apps[0].acceptSandbox", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)] }] })],
		["apps[0].apiKeys[0]", configWith({ apiKeys: ["TOP-SECRET"] })],
		["apps[1].apiKeys[0]", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false }, { id: "2", apiKeys: ["k".repeat(32)], acceptSandbox: false }] })],
		["endpoints.googlePlay", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false }], endpoints: { googlePlay: "ftp://x" } })],
		["apps", JSON.stringify({ apps: [] })],
		["appleRootCertificates[1]", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false }], appleRootCertificates: [APPLE_ROOT_CA_G3, "TOP-SECRET-not-a-certificate"] })],
		["apps[0].amazon.sharedSecret", configWith({ amazon: { sharedSecret: "TOP-SECRET" } })],
		["apps[0].amazon.packageName", configWith({ amazon: { sharedSecret: "TOP-SECRET-0123456789", packageName: "not a package" } })],
		[
			"apps[1].amazon.packageName",
			JSON.stringify({
				apps: [
					{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false, amazon: { sharedSecret: "TOP-SECRET-0123456789", packageName: "com.example.a" } },
					{ id: "2", apiKeys: ["j".repeat(32)], acceptSandbox: false, amazon: { sharedSecret: "TOP-SECRET-0123456789", packageName: "com.example.a" } },
				],
			}),
		],
		["notifications.amazonSns.certificateHosts[0]", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false }], notifications: { amazonSns: { certificateHosts: ["https://sns.*.amazonaws.com/"] } } })],
		["notifications.amazonSns.topicArns[0]", JSON.stringify({ apps: [{ id: "1", apiKeys: ["k".repeat(32)], acceptSandbox: false }], notifications: { amazonSns: { topicArns: ["not-an-arn"] } } })],
	])("names %s and never echoes a value", async (field, config) => {
		const { status, body } = await fetchWith(config);
		expect(status).toBe(503);
		expect(body.error.code).toBe("misconfigured");
		expect(body.error.message).toContain(field);
		expect(JSON.stringify(body)).not.toContain("TOP-SECRET");
	});

	it("reports the problems on /health too", async () => {
		const { status, body } = await fetchWith(JSON.stringify({ apps: [] }), "/health", { method: "GET" });
		expect(status).toBe(503);
		expect(body).toMatchObject({ status: "misconfigured", problems: [expect.stringContaining("apps")] });
	});
});

describe("a deployment whose service-account key is PEM-shaped but not a key", () => {
	it("answers 503 misconfigured on verification, not 500 and not a refusal", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const config = JSON.stringify({
			apps: [{ id: "1234", apiKeys: ["k".repeat(32)], acceptSandbox: false, google: { packageName: "com.example.iapedge", serviceAccount: { client_email: "broken@x.iam.gserviceaccount.com", private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", token_uri: `${env.TEST_EMULATOR_URL}/google/token` } } }],
			endpoints: { googlePlay: `${env.TEST_EMULATOR_URL}/google` },
		});
		const { status, body } = await fetchWith(config, "/verify", { method: "POST", body: JSON.stringify(googleVerifyBody(purchase)), headers: { "content-type": "application/json" } });
		expect(status).toBe(503);
		expect(body.error.code).toBe("misconfigured");
		expect(body.error.message).toContain("broken@x.iam.gserviceaccount.com");
	});
});

describe("a deployment with a good APPS_CONFIG", () => {
	it("is healthy", async () => {
		const { status, body } = await fetchWith(env.APPS_CONFIG, "/health", { method: "GET" });
		expect(status).toBe(200);
		expect(body.status).toBe("ok");
	});
});
