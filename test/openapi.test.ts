import { describe, expect, it } from "vitest";
import { REFUSAL_CODES } from "../src/answers";
import { app } from "../src/app";
import { ERROR_CODES } from "../src/http/errors";
import { call, json } from "./support/service.ts";

/**
 * /openapi.json and /docs, as the running service answers them. (That the document is valid OpenAPI 3.1, and that
 * the README's requests match it, is checked in Node, where the validators run: test/e2e/openapi.test.ts.)
 */

type Operation = { summary?: string; tags?: string[]; security?: Record<string, string[]>[]; responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>; requestBody?: unknown; parameters?: { name: string; in: string }[] };
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, any>; securitySchemes: Record<string, unknown> } };

const document = async () => json<Document>(await call("GET", "/openapi.json"));
const openApiPath = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

describe("GET /openapi.json", () => {
	it("is an OpenAPI 3.1 document, served without credentials", async () => {
		const response = await call("GET", "/openapi.json");
		expect(response.status).toBe(200);
		expect((await json<Document>(response)).openapi).toBe("3.1.0");
	});

	it("describes every route the app mounts, each with a summary, a tag and its answers", async () => {
		const doc = await document();
		const mounted = app.routes.filter((r) => r.method !== "ALL").map((r) => ({ method: r.method.toLowerCase(), path: openApiPath(r.path) }));
		expect(mounted.length).toBeGreaterThan(25);
		for (const { method, path } of mounted) {
			const operation = doc.paths[path]?.[method];
			expect(operation, `${method.toUpperCase()} ${path}`).toBeDefined();
			expect(operation!.summary, `${method} ${path}`).toBeTruthy();
			expect(operation!.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
			expect(Object.keys(operation!.responses).length, `${method} ${path}`).toBeGreaterThan(0);
		}
		// And nothing that is not mounted.
		const described = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
		expect(new Set(described)).toEqual(new Set(mounted.map((r) => `${r.method} ${r.path}`)));
	});

	it("names every path parameter of every route", async () => {
		const doc = await document();
		for (const [path, item] of Object.entries(doc.paths)) {
			for (const operation of Object.values(item)) {
				const declared = (operation.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
				for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) expect(declared, path).toContain(name);
			}
		}
	});

	it("gives the request body of every route that reads one", async () => {
		const doc = await document();
		for (const [method, path] of [["post", "/verify"], ["post", "/v1/purchases/validate"], ["post", "/v1/purchases/consume"], ["post", "/v1/purchases/check"], ["post", "/v1/purchases/{store}/{transactionId}/transfer"], ["post", "/v1/purchases/{store}/{transactionId}/revoke"], ["post", "/v1/purchases/{store}/{transactionId}/reverify"], ["post", "/v1/notifications/apple"], ["post", "/v1/notifications/google"]] as const) {
			expect(doc.paths[path]?.[method]?.requestBody, `${method} ${path}`).toBeDefined();
		}
	});

	it("documents the one error shape with every error code, and every refusal code", async () => {
		const { components } = await document();
		expect(components.schemas.Error.properties.error.properties.code.enum).toEqual([...ERROR_CODES]);
		expect(components.schemas.RefusalCode.enum).toEqual([...REFUSAL_CODES]);
	});

	it("points every error answer at the error shape", async () => {
		const doc = await document();
		let errors = 0;
		for (const item of Object.values(doc.paths)) {
			for (const operation of Object.values(item)) {
				for (const [status, response] of Object.entries(operation.responses)) {
					const schema = response.content?.["application/json"]?.schema;
					if (Number(status) >= 400 && schema) {
						expect(schema.$ref).toBe("#/components/schemas/Error");
						errors++;
					}
				}
			}
		}
		expect(errors).toBeGreaterThan(50);
	});

	it("says which credentials each route takes", async () => {
		const doc = await document();
		expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["apiKey", "cloudflareAccess", "consoleSession", "pubsubOidc", "verifyKey", "verifyKeyHeader"]);
		expect(doc.paths["/v1/users/{userId}/purchases"]!.get!.security).toEqual([{ apiKey: [] }]);
		expect(doc.paths["/verify"]!.post!.security).toEqual([{ verifyKey: [] }, { verifyKeyHeader: [] }]);
		expect(doc.paths["/health"]!.get!.security).toEqual([]);
	});

	it("answers even when APPS_CONFIG is broken", async () => {
		const { env } = await import("cloudflare:workers");
		const worker = (await import("../src/index")).default;
		const { createExecutionContext } = await import("cloudflare:test");
		const response = await worker.fetch(new Request("https://iap-edge.test/openapi.json"), { ...env, APPS_CONFIG: "{" }, createExecutionContext());
		expect(response.status).toBe(200);
	});
});

describe("GET /docs", () => {
	it("is the reference, one section per operation with a form to try it, scripts from this server only", async () => {
		const response = await call("GET", "/docs");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(/^text\/html/);
		expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
		const html = await response.text();
		const doc = await document();
		for (const path of Object.keys(doc.paths)) expect(html).toContain(`<code>${path}</code>`);
		expect(html).toMatch(/<script src="\/assets\/reference.js" defer(="")?><\/script>/);
		expect(html).not.toMatch(/<script[^>]+src="https?:/);
		expect((html.match(/<form class="try"/g) ?? []).length).toBe(Object.values(doc.paths).flatMap((item) => Object.keys(item)).length);
	});
});
