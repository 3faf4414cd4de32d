import { describeRoute } from "hono-openapi";
import { openApiSchema as resolver } from "./zod-schema";
import type { z } from "zod";
import { ErrorSchema } from "./schemas";

/**
 * Each route describes itself next to its handler: `app.post("/x", describe({...}), jsonBody(Schema), async (c) => …)`.
 * Request schemas come from the validation middleware (src/http/validate.ts); this adds what only the route knows:
 * what it is for, who may call it, and what it answers, errors included.
 */

export type Security = "apiKey" | "verifyKey" | "verifyKeyHeader" | "pubsubOidc" | "consoleSession" | "cloudflareAccess";

type Answer = { description: string; schema?: z.ZodType; example?: unknown; examples?: Record<string, { summary?: string; value: unknown }>; headers?: Record<string, { description: string }>; media?: string };

const ERROR_DESCRIPTIONS: Record<number, string> = {
	400: "`invalid_request`: a malformed field (named in `field`) or a body that is not JSON",
	401: "`unauthorized`: a missing or wrong key",
	403: "`forbidden`: signed in, but not allowed this (another app's data, or no CSRF token)",
	404: "`not_found`: nothing here by that id",
	409: "`conflict`",
	413: "`payload_too_large`: a body over 512 KiB",
	429: "`rate_limited`: over the rate limit; Retry-After says when to come back",
	503: "`store_unreachable`, `history_unavailable` or `misconfigured`: no verdict could be had, retry after Retry-After (never a false no)",
};

export interface RouteDescription {
	summary: string;
	description?: string;
	tags: string[];
	/** Any one of these schemes is enough (OpenAPI's list of alternatives). Omitted: no credentials. */
	security?: Security[];
	responses: Record<number, Answer>;
	/** A JSON body the route reads by itself (one whose checks belong to its sender's protocol), described only. */
	body?: z.ZodType;
	/** Error statuses this route may answer, each with the one error shape. */
	errors?: number[];
}

function content(answer: Answer) {
	if (!answer.schema && answer.example === undefined && !answer.examples) return undefined;
	return {
		[answer.media ?? "application/json"]: {
			...(answer.schema ? { schema: resolver(answer.schema) } : {}),
			...(answer.example === undefined ? {} : { example: answer.example }),
			...(answer.examples ? { examples: answer.examples } : {}),
		},
	};
}

export function describe(route: RouteDescription) {
	const responses: Record<string, unknown> = {};
	for (const [status, answer] of Object.entries(route.responses)) {
		const body = content(answer);
		responses[status] = { description: answer.description, ...(body ? { content: body } : {}), ...(answer.headers ? { headers: Object.fromEntries(Object.entries(answer.headers).map(([name, h]) => [name, { description: h.description, schema: { type: "string" } }])) } : {}) };
	}
	for (const status of route.errors ?? []) {
		responses[String(status)] ??= {
			description: ERROR_DESCRIPTIONS[status] ?? "an error",
			content: { "application/json": { schema: resolver(ErrorSchema) } },
			...(status === 429 || status === 503 ? { headers: { "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "string" } } } } : {}),
		};
	}
	return describeRoute(({
		summary: route.summary,
		...(route.description ? { description: route.description } : {}),
		tags: route.tags,
		...(route.body ? { requestBody: { required: true, content: { "application/json": { schema: resolver(route.body) } } } } : {}),
		...(route.security ? { security: route.security.map((scheme) => ({ [scheme]: [] })) } : { security: [] }),
		responses,
	}) as unknown as Parameters<typeof describeRoute>[0]);
}
