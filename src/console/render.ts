import type { Context } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";

/** An HTML page, standards mode. */
export async function page(c: Context, node: JSX.Element, status: 200 | 400 | 401 | 403 | 404 | 409 | 429 | 503 = 200): Promise<Response> {
	return c.html(`<!doctype html>${await node.toString()}`, status);
}
