import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors";

/**
 * Parses a JSON body or query with zod. The first problem becomes a 400 naming the field, in the
 * dotted form the caller wrote it (`purchaseDetails.productID`).
 */
export async function parseJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
	let body: unknown;
	try {
		body = await c.req.json();
	} catch {
		throw new ApiError("invalid_request", "the request body must be a JSON object");
	}
	return parseWith(schema, body);
}

/** As parseJsonBody, for a value already in hand; `at` is where that value sits in the request. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, at?: string): z.output<S> {
	const result = schema.safeParse(value);
	if (result.success) return result.data;
	const issue = result.error.issues[0]!;
	const field = [...(at ? [at] : []), ...issue.path.map(String)].join(".");
	throw new ApiError("invalid_request", field ? `${field}: ${issue.message}` : `body: ${issue.message}`, field ? { field } : {});
}
