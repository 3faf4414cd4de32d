import { Hono } from "hono";
import type { AppEnv } from "../http/app";
import { page } from "../console/render";
import { htmlSecurity } from "../console/security";
import { openApiDocument } from "../openapi/document";
import { describe } from "../openapi/describe";
import { Reference, type OpenApiDocument } from "../openapi/reference";

/**
 * The API described: GET /openapi.json (OpenAPI 3.1, generated from the routes) and GET /docs (the interactive
 * reference, rendered from that same document). Neither needs credentials nor APPS_CONFIG.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function referenceRoutes(app: Hono<any, any, any>) {
	return new Hono<AppEnv>()
		.get("/openapi.json", describe({
			summary: "This API's OpenAPI 3.1 description",
			tags: ["Operations"],
			responses: { 200: { description: "The document (every route, parameter, answer and error)", example: { openapi: "3.1.0", info: { title: "iap-edge", version: "1" }, paths: {} } } },
		}), async (c) => c.json(await openApiDocument(app)))
		.get("/docs", describe({
			summary: "The interactive API reference (HTML)",
			tags: ["Operations"],
			responses: { 200: { description: "An HTML page: every operation, its fields and answers, and a form to try each", media: "text/html", example: "<!doctype html>…" } },
		}), htmlSecurity, async (c) => page(c, <Reference doc={(await openApiDocument(app)) as OpenApiDocument} />));
}
