import type { Context } from "hono";
import * as z from "zod";

/**
 * Admin request bodies, parsed with zod as the service parses its own: the first problem answers 400 naming the
 * field, e.g. `{ "error": "times: must be a whole number, at least 1", "field": "times" }`. An empty body reads as
 * `{}`, so an update with nothing to change needs no body. Any content type: tests and curl do not always set one.
 */
export type AdminBody<T> = { ok: true; value: T } | { ok: false; response: Response };

export async function parseAdminBody<S extends z.ZodType>(c: Context, schema: S): Promise<AdminBody<z.output<S>>> {
	const text = await c.req.text();
	let body: unknown = {};
	if (text.trim() !== "") {
		try {
			body = JSON.parse(text);
		} catch {
			return { ok: false, response: refuse(c, "", "must be a JSON object") };
		}
	}
	const result = schema.safeParse(body);
	if (result.success) return { ok: true, value: result.data };
	const issue = result.error.issues[0]!;
	return { ok: false, response: refuse(c, issue.path.map(String).join("."), issue.message) };
}

/** A 400 about one field, for checks zod cannot make alone (they depend on what the emulator holds). */
export function refuse(c: Context, field: string, message: string): Response {
	return c.json({ error: `${field || "body"}: ${message}`, ...(field ? { field } : {}) }, 400);
}

/** Pieces several admin bodies share. */
export const nonEmptyString = z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" });
const WHOLE = "must be a whole number, at least 1";
export const positiveWhole = z.number({ error: WHOLE }).int({ error: WHOLE }).min(1, { error: WHOLE });
/** How many matching calls a fault affects. */
export const times = positiveWhole.default(1);
