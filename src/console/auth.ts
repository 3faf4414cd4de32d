import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { AppConfig, Config, ConsoleConfig } from "../config/schema";
import type { AppEnv } from "../http/app";
import { indexOfSecret, secretEquals } from "../http/secrets";

/**
 * Who is using the console, and which apps they see. Two ways in:
 * - Cloudflare Access in front of the Worker (production): every request carries Access's JWT in
 *   Cf-Access-Jwt-Assertion, verified with jose against the team's keys, issuer and the application's AUD tag; the
 *   e-mail it vouches for is matched against console.access.users.
 * - A console key (local use, deployments without Access), exchanged at the sign-in form for a session cookie:
 *   an HS256 JWT naming the key, signed with a key derived from that console key, so removing or rotating the key
 *   ends its sessions. HttpOnly, SameSite=Strict, Secure outside localhost.
 * Every form carries a CSRF token, checked against a cookie of its own (double submit; SameSite=Strict), and
 * cross-origin posts are refused outright.
 */

export interface ConsoleUser {
	/** Shown in the page header. */
	name: string;
	/** Who did it, in the audit trail: never a key. */
	actor: string;
	apps: "*" | string[];
	via: "key" | "access";
}

export interface ConsoleEnv extends AppEnv {
	Variables: AppEnv["Variables"] & { user: ConsoleUser; csrf: string };
}

export const SESSION_COOKIE = "iap_console";
export const CSRF_COOKIE = "iap_csrf";
export const CSRF_FIELD = "_csrf";
const SESSION_AUDIENCE = "iap-edge:console";

const encoder = new TextEncoder();

async function sessionKey(consoleKey: string): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`iap-edge console session key\u0000${consoleKey}`)));
}

/** Cookies are Secure everywhere but on this machine (plain http://localhost under `wrangler dev`). */
export function isLocal(c: Context): boolean {
	const { hostname } = new URL(c.req.url);
	return hostname === "localhost" || hostname === "127.0.0.1" || hostname === "[::1]";
}

function cookieOptions(c: Context, maxAge?: number) {
	return { httpOnly: true, secure: !isLocal(c), sameSite: "Strict" as const, path: "/console", ...(maxAge === undefined ? {} : { maxAge }) };
}

/** The console key presented at the sign-in form, or undefined; every key is compared in constant time. */
export async function consoleKeyFor(config: ConsoleConfig | undefined, presented: string) {
	const keys = config?.keys ?? [];
	const index = await indexOfSecret(presented, keys.map((k) => k.key));
	return index < 0 ? undefined : keys[index];
}

export async function startSession(c: Context, config: ConsoleConfig, key: { name: string; key: string }): Promise<void> {
	const now = Math.floor(Date.now() / 1000);
	const token = await new SignJWT({})
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setSubject(key.name)
		.setAudience(SESSION_AUDIENCE)
		.setIssuedAt(now)
		.setExpirationTime(now + config.sessionSeconds)
		.sign(await sessionKey(key.key));
	setCookie(c, SESSION_COOKIE, token, cookieOptions(c, config.sessionSeconds));
}

export function endSession(c: Context): void {
	deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

async function sessionUser(config: ConsoleConfig, token: string): Promise<ConsoleUser | undefined> {
	let name: unknown;
	try {
		name = decodeJwt(token).sub;
	} catch {
		return undefined;
	}
	const key = config.keys.find((k) => k.name === name);
	if (!key) return undefined;
	try {
		await jwtVerify(token, await sessionKey(key.key), { audience: SESSION_AUDIENCE, algorithms: ["HS256"], subject: key.name });
	} catch (err) {
		if (err instanceof joseErrors.JOSEError) return undefined;
		throw err;
	}
	return { name: key.name, actor: `console:${key.name}`, apps: key.apps, via: "key" };
}

const jwksByTeam = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function teamKeys(teamDomain: string, timeoutMs: number) {
	let jwks = jwksByTeam.get(teamDomain);
	if (!jwks) {
		// jose caches the set and refetches it when a token names a key it does not know (Access rotates its keys).
		jwks = createRemoteJWKSet(new URL(`${teamDomain}/cdn-cgi/access/certs`), { timeoutDuration: timeoutMs, cooldownDuration: 30_000 });
		jwksByTeam.set(teamDomain, jwks);
	}
	return jwks;
}

function emailMatches(pattern: string, email: string): boolean {
	if (pattern === "*") return true;
	if (pattern.startsWith("*@")) return email.toLowerCase().endsWith(pattern.slice(1).toLowerCase());
	return pattern.toLowerCase() === email.toLowerCase();
}

/** The Access user behind a Cf-Access-Jwt-Assertion, or why not. */
async function accessUser(config: Config, token: string): Promise<ConsoleUser | { refused: string }> {
	const access = config.console!.access!;
	let email: unknown;
	try {
		const { payload } = await jwtVerify(token, teamKeys(access.teamDomain, config.storeTimeoutMs), { issuer: access.teamDomain, audience: access.audience, algorithms: ["RS256"] });
		email = payload.email;
	} catch (err) {
		if (err instanceof joseErrors.JOSEError) return { refused: "the Cloudflare Access token is not valid for this console" };
		throw err;
	}
	if (typeof email !== "string") return { refused: "the Cloudflare Access token names no e-mail (service tokens cannot use the console)" };
	const allowed = access.users.find((u) => emailMatches(u.email, email));
	if (!allowed) return { refused: `${email} is not a console user (console.access.users)` };
	return { name: email, actor: `access:${email}`, apps: allowed.apps, via: "access" };
}

/**
 * Resolves the console user, or answers for them: to the sign-in form (a page) or 401 (an action). With Access
 * configured, requests without its token are refused: the console is then reachable through Access only, unless
 * console keys are configured too.
 */
export const requireConsoleUser: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
	const config = c.get("config");
	const consoleConfig = config.console;
	const assertion = c.req.header("cf-access-jwt-assertion");
	if (consoleConfig?.access && assertion) {
		const user = await accessUser(config, assertion);
		if ("refused" in user) return c.text(`Forbidden: ${user.refused}`, 403);
		c.set("user", user);
		return next();
	}
	const token = getCookie(c, SESSION_COOKIE);
	const user = consoleConfig && token ? await sessionUser(consoleConfig, token) : undefined;
	if (user) {
		c.set("user", user);
		return next();
	}
	if (token) endSession(c);
	if (c.req.method === "GET") return c.redirect(`/console/sign-in?next=${encodeURIComponent(new URL(c.req.url).pathname + new URL(c.req.url).search)}`, 303);
	return c.text("Unauthorized: sign in first", 401);
};

/** Whether the user may see this app. */
export function maySee(user: ConsoleUser, app: AppConfig): boolean {
	return user.apps === "*" || user.apps.includes(app.id);
}

export function visibleApps(user: ConsoleUser, config: Config): AppConfig[] {
	return config.apps.filter((app) => maySee(user, app));
}

/** The CSRF token of this browser: a random value in a cookie of its own, set on the first page it is given. */
export const csrfToken: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
	let token = getCookie(c, CSRF_COOKIE);
	if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) {
		token = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
			.replaceAll("+", "-")
			.replaceAll("/", "_")
			.replace(/=+$/, "");
		setCookie(c, CSRF_COOKIE, token, cookieOptions(c));
	}
	c.set("csrf", token);
	await next();
};

/**
 * Every POST: from this origin (a browser says where a form came from), carrying the CSRF token of this browser.
 * Anything else is refused 403 before it is read further.
 */
export const checkCsrf: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
	if (c.req.method !== "POST") return next();
	const origin = c.req.header("origin");
	const site = c.req.header("sec-fetch-site");
	if ((origin && origin !== new URL(c.req.url).origin) || (site && site !== "same-origin" && site !== "none")) {
		return c.text("Forbidden: a console form must be sent from the console itself", 403);
	}
	const cookie = getCookie(c, CSRF_COOKIE);
	const form = await c.req.parseBody();
	const sent = form[CSRF_FIELD];
	if (!cookie || typeof sent !== "string" || !(await secretEquals(sent, cookie))) {
		return c.text("Forbidden: the form's CSRF token is missing or wrong; reload the page and try again", 403);
	}
	await next();
};
