import type { Context } from "hono";
import { exportJWK, importPKCS8, SignJWT } from "jose";
import * as z from "zod";
import { parseAdminBody } from "./admin-body";
import { configOf, type AccessConfig } from "./config";

/**
 * Cloudflare Access in front of the service's console
 * (https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/): Access signs
 * an RS256 JWT for each signed-in user (`iss` the team domain, `aud` the application's AUD tag, `email`, `sub`,
 * `iat`/`exp`) and sends it to the origin as the Cf-Access-Jwt-Assertion header; the team's public keys are at
 * <team domain>/cdn-cgi/access/certs as `{keys: [JWK...], public_cert, public_certs}`. Here the team domain is
 * {base}/access.
 *   GET  /access/cdn-cgi/access/certs            the JWK set
 *   POST /_emulator/access/token {email, audience?, expiresInSeconds?, issuer?}   the JWT Access would send for that user
 */

const keys = new Map<string, Promise<{ signing: CryptoKey; jwk: Record<string, unknown> }>>();

function keyOf(access: AccessConfig) {
	let key = keys.get(access.privateKey);
	if (!key) {
		key = (async () => {
			const signing = await importPKCS8(access.privateKey, "RS256");
			const { kty, n, e } = await exportJWK(await importPKCS8(access.privateKey, "RS256", { extractable: true }));
			return { signing, jwk: { kty, n, e, alg: "RS256", use: "sig", kid: access.kid } };
		})();
		keys.set(access.privateKey, key);
	}
	return key;
}

function teamDomain(c: Context): string {
	const url = new URL(c.req.url);
	return `${url.origin}/access`;
}

/** GET /access/cdn-cgi/access/certs */
export async function accessCerts(c: Context): Promise<Response> {
	const access = configOf(c).access;
	return c.json({ keys: access ? [(await keyOf(access)).jwk] : [], public_cert: { kid: access?.kid ?? "", cert: "" }, public_certs: [] });
}

const TokenBody = z.object({
	email: z.string().min(3),
	audience: z.string().optional(),
	expiresInSeconds: z.number().int().min(-86400).max(86400).default(3600),
	issuer: z.string().optional(),
});

/** POST /_emulator/access/token */
export async function accessToken(c: Context): Promise<Response> {
	const access = configOf(c).access;
	if (!access) return c.json({ error: "EMULATOR_CONFIG.access is not set" }, 400);
	const body = await parseAdminBody(c, TokenBody);
	if (!body.ok) return body.response;
	const now = Math.floor(Date.now() / 1000);
	const { email, audience, expiresInSeconds, issuer } = body.value;
	const token = await new SignJWT({ email, type: "app", identity_nonce: crypto.randomUUID(), country: "XX" })
		.setProtectedHeader({ alg: "RS256", kid: access.kid })
		.setIssuer(issuer ?? teamDomain(c))
		.setAudience([audience ?? access.audience])
		.setSubject(crypto.randomUUID())
		.setIssuedAt(now)
		.setNotBefore(now)
		.setExpirationTime(now + expiresInSeconds)
		.sign((await keyOf(access)).signing);
	return c.json({ token }, 201);
}
