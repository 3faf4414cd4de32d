import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { MIGRATIONS } from "../src/ledger/schema";
import { SAMPLE_APP } from "./support/fixtures.ts";
import { bearer, json } from "./support/service.ts";

/** GET /health says whether a request would find what it needs, and what a missing piece is called. */

async function fetchWith(overrides: Partial<Env>, path = "/health", init: RequestInit = { method: "GET" }) {
	const ctx = createExecutionContext();
	const response = await worker.fetch(new Request(`https://iap-edge.test${path}`, init), { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return { status: response.status, body: await json(response), headers: response.headers };
}

function withApp(app: Record<string, unknown>): string {
	const config = JSON.parse(env.APPS_CONFIG) as { apps: Record<string, unknown>[] };
	return JSON.stringify({ ...config, apps: [{ ...config.apps[0], ...app }] });
}

const NOT_A_KEY = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-AAAA\n-----END PRIVATE KEY-----";

describe("a deployment where everything is in place", () => {
	it("is healthy, check by check", async () => {
		const { status, body } = await fetchWith({});
		expect(status).toBe(200);
		expect(body).toEqual({ status: "ok", apps: expect.any(Number), checks: { config: "ok", keys: "ok", d1: "ok", durable_objects: "ok" } });
	});

	it("needs exactly the migrations in migrations/", () => {
		expect(MIGRATIONS).toEqual(env.TEST_MIGRATIONS.map((m) => m.name));
	});
});

describe("a deployment whose D1 never had its migrations applied", () => {
	it("is unhealthy, naming the missing migration and the command that applies it", async () => {
		const { status, body, headers } = await fetchWith({ DB: env.EMPTY_DB });
		expect(status).toBe(503);
		expect(body.status).toBe("misconfigured");
		expect(body.checks).toMatchObject({ d1: "failing", keys: "ok", durable_objects: "ok" });
		expect(body.problems.join(" ")).toContain(MIGRATIONS[0]);
		expect(body.problems.join(" ")).toContain("npm run start:local");
		expect(Number(headers.get("retry-after"))).toBeGreaterThan(0);
	});

	it("answers a history read 503 misconfigured with the command to run, not a 500", async () => {
		const { status, body, headers } = await fetchWith({ DB: env.EMPTY_DB }, "/v1/users/user-1/purchases", { method: "GET", headers: bearer(SAMPLE_APP.apiKey) });
		expect(status).toBe(503);
		expect(body.error.code).toBe("misconfigured");
		expect(body.error.message).toContain("npm run start:local");
		expect(Number(headers.get("retry-after"))).toBeGreaterThan(0);
	});
});

describe("a deployment with a key that does not import", () => {
	it.each([
		["apps[0].google.serviceAccount.private_key", (config: Record<string, any>) => ({ google: { ...config.google, serviceAccount: { ...config.google.serviceAccount, private_key: NOT_A_KEY } } })],
		["apps[0].apple.api.privateKey", (config: Record<string, any>) => ({ apple: { ...config.apple, api: { ...config.apple.api, privateKey: NOT_A_KEY } } })],
	])("is unhealthy, naming %s without quoting it", async (field, change) => {
		const sample = (JSON.parse(env.APPS_CONFIG) as { apps: Record<string, any>[] }).apps[0]!;
		const { status, body } = await fetchWith({ APPS_CONFIG: withApp(change(sample)) });
		expect(status).toBe(503);
		expect(body).toMatchObject({ status: "misconfigured", checks: { config: "ok", keys: "failing" } });
		expect(body.problems).toEqual([expect.stringContaining(field)]);
		expect(JSON.stringify(body)).not.toContain("TOP-SECRET");
	});
});

describe("a deployment whose APPS_CONFIG is not JSON", () => {
	it("names the line and column, never the text there", async () => {
		const { status, body } = await fetchWith({ APPS_CONFIG: '{\n  "apps": [\n    {"id": "TOP-SECRET" "x"}\n  ]\n}' });
		expect(status).toBe(503);
		expect(body.problems).toEqual([expect.stringContaining("at line 3, column 25")]);
		expect(JSON.stringify(body)).not.toContain("TOP-SECRET");
	});

	it.each([`'{"apps": []}'`, `"{\\"apps\\": []}"`])("hints at quoting when the value is quoted: %s", async (value) => {
		const { body } = await fetchWith({ APPS_CONFIG: value });
		expect(body.problems.join(" ")).toMatch(/quote/);
	});

	it("answers every other request 503 misconfigured with Retry-After", async () => {
		const { status, body, headers } = await fetchWith({ APPS_CONFIG: "{" }, "/verify", { method: "POST", body: "{}" });
		expect(status).toBe(503);
		expect(body.error.code).toBe("misconfigured");
		expect(Number(headers.get("retry-after"))).toBeGreaterThan(0);
	});
});
