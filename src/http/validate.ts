import type { Context, MiddlewareHandler } from "hono";
import { uniqueSymbol } from "hono-openapi";
import { openApiSchema } from "../openapi/zod-schema";
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

/**
 * Validation as route middleware: the same zod schema checks the request and describes it in /openapi.json (the
 * OpenAPI integration reads it from the middleware, src/openapi/document.ts), so the two cannot drift apart. The
 * handler reads the parsed value with `c.req.valid("json" | "query" | "param")`. Errors keep the one error shape
 * (a 400 naming the field), and a body is read as JSON whatever its Content-Type says, as wrapper apps send it.
 */
type Target = "json" | "query" | "param";

type Validated<T extends Target, S extends z.ZodType> = MiddlewareHandler<
	// eslint-disable-next-line @typescript-eslint/no-explicit-any
	any,
	string,
	{ in: { [K in T]: z.input<S> }; out: { [K in T]: z.output<S> } }
>;

function validated<T extends Target, S extends z.ZodType>(target: T, schema: S, read: (c: Context) => Promise<z.output<S>>): Validated<T, S> {
	const middleware: MiddlewareHandler = async (c, next) => {
		c.req.addValidatedData(target, (await read(c)) as {});
		await next();
	};
	return Object.assign(middleware, { [uniqueSymbol]: { target, ...openApiSchema(schema) } }) as unknown as Validated<T, S>;
}

/** The JSON body, parsed with `schema`. */
export const jsonBody = <S extends z.ZodType>(schema: S) => validated("json", schema, (c) => parseJsonBody(c, schema));

/** The query string (one value per name), parsed with `schema`. */
export const queryOf = <S extends z.ZodType>(schema: S) => validated("query", schema, async (c) => parseWith(schema, c.req.query()));

/** The path's parameters, parsed with `schema`. */
export const paramsOf = <S extends z.ZodType>(schema: S) => validated("param", schema, async (c) => parseWith(schema, c.req.param()));
