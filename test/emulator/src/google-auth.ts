import type { Context } from "hono";
import { jwtVerify, decodeJwt, errors as joseErrors } from "jose";
import type { RegisteredServiceAccount } from "./config";
import { googlePublicKey } from "./keys";
import { randomToken } from "./random";

/**
 * Google's OAuth 2.0 token endpoint for service accounts (JWT bearer grant), checked as Google checks it:
 * the assertion is RS256-signed by the registered key of `iss`, `aud` is this token URL, the scope asks for
 * androidpublisher, and the token lives at most one hour.
 */

interface IssuedToken {
	clientEmail: string;
	expiresAt: number;
}

const ANDROID_PUBLISHER_SCOPE = "https://www.googleapis.com/auth/androidpublisher";
const TOKEN_LIFETIME_SECONDS = 3599;
const issued = new Map<string, IssuedToken>();

function oauthError(c: Context, status: 400 | 401, error: string, description: string) {
	return c.json({ error, error_description: description }, status);
}

export async function subjectOfTokenRequest(c: Context): Promise<string> {
	const form = await c.req.raw.clone().formData().catch(() => undefined);
	const assertion = form?.get("assertion");
	let iss = "";
	if (typeof assertion === "string") {
		try {
			iss = String(decodeJwt(assertion).iss ?? "");
		} catch {
			// Judged properly by the handler.
		}
	}
	return `${new URL(c.req.url).pathname} ${iss}`;
}

export async function handleTokenRequest(c: Context, accounts: RegisteredServiceAccount[]) {
	if (!(c.req.header("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
		return oauthError(c, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.");
	}
	const form = await c.req.formData();
	if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
		return oauthError(c, 400, "unsupported_grant_type", "Invalid grant_type.");
	}
	const assertion = form.get("assertion");
	if (typeof assertion !== "string" || assertion === "") return oauthError(c, 400, "invalid_request", "Missing required parameter: assertion");

	let claims: ReturnType<typeof decodeJwt>;
	try {
		claims = decodeJwt(assertion);
	} catch {
		return oauthError(c, 400, "invalid_grant", "Invalid JWT: malformed.");
	}
	const account = accounts.find((a) => a.client_email === claims.iss);
	if (!account) return oauthError(c, 400, "invalid_grant", "Invalid grant: account not found");

	const tokenUrl = new URL(c.req.url);
	tokenUrl.search = "";
	try {
		await jwtVerify(assertion, await googlePublicKey(account), {
			algorithms: ["RS256"],
			audience: tokenUrl.toString(),
			issuer: account.client_email,
			requiredClaims: ["iat", "exp", "scope"],
			clockTolerance: 60,
		});
	} catch (err) {
		if (err instanceof joseErrors.JWSSignatureVerificationFailed) return oauthError(c, 400, "invalid_grant", "Invalid JWT Signature.");
		if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === "aud") {
			return oauthError(c, 400, "invalid_grant", "Invalid JWT: Failed audience check.");
		}
		return oauthError(c, 400, "invalid_grant", `Invalid JWT: ${err instanceof Error ? err.message : "rejected"}`);
	}
	const iat = Number(claims.iat);
	const exp = Number(claims.exp);
	if (!(exp > iat) || exp - iat > 3600) {
		return oauthError(c, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
	}
	const scopes = String(claims.scope ?? "").split(" ");
	if (!scopes.includes(ANDROID_PUBLISHER_SCOPE)) return oauthError(c, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");

	const accessToken = `ya29.${randomToken(96)}`;
	issued.set(accessToken, { clientEmail: account.client_email, expiresAt: Date.now() + TOKEN_LIFETIME_SECONDS * 1000 });
	return c.json({ access_token: accessToken, expires_in: TOKEN_LIFETIME_SECONDS, token_type: "Bearer" });
}

/** The account behind a request's bearer token, or undefined when the token is missing, unknown or expired. */
export function authenticate(authorization: string | undefined, accounts: RegisteredServiceAccount[]): RegisteredServiceAccount | undefined {
	const match = /^Bearer (.+)$/.exec(authorization ?? "");
	if (!match) return undefined;
	const token = issued.get(match[1]!);
	if (!token || token.expiresAt <= Date.now()) return undefined;
	return accounts.find((a) => a.client_email === token.clientEmail);
}

/** Test hook: make every token issued so far expire now, as if an hour had passed. */
export function expireAllTokens(): number {
	for (const token of issued.values()) token.expiresAt = 0;
	return issued.size;
}
