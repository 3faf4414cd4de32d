import type { MiddlewareHandler } from "hono";

/**
 * Headers for every HTML page: scripts and styles from this origin only (public/assets), no framing, no referrer
 * leaving with an id in the URL, and pages that hold customer data never cached.
 */
export const htmlSecurity: MiddlewareHandler = async (c, next) => {
	await next();
	if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
	c.header(
		"content-security-policy",
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	);
	c.header("x-content-type-options", "nosniff");
	c.header("referrer-policy", "same-origin");
	c.header("cache-control", "no-store");
};
