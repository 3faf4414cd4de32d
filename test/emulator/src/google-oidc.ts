import type { Context } from "hono";
import { exportJWK, importPKCS8, SignJWT } from "jose";
import { configOf, type GooglePushConfig } from "./config";

/**
 * Google's side of an authenticated Pub/Sub push subscription
 * (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions): each push carries
 * `Authorization: Bearer <OIDC token>`, an RS256 JWT Google signs for the subscription's service account and
 * audience, made anew for every delivery attempt. The public keys are published as a JWK set at
 * {base}/google/oauth2/v3/certs (endpoints.googleCerts), as Google publishes its own at
 * https://www.googleapis.com/oauth2/v3/certs, with a Cache-Control max-age.
 */

const ISSUER = "https://accounts.google.com";
const TOKEN_LIFETIME_SECONDS = 3600;

const signingKeys = new Map<string, Promise<CryptoKey>>();
const publicJwks = new Map<string, Promise<Record<string, unknown>>>();

function signingKey(push: GooglePushConfig): Promise<CryptoKey> {
	let key = signingKeys.get(push.privateKey);
	if (!key) {
		key = importPKCS8(push.privateKey, "RS256");
		signingKeys.set(push.privateKey, key);
	}
	return key;
}

/** The public half of the push key as a JWK, the way Google lists its keys. */
function publicJwk(push: GooglePushConfig): Promise<Record<string, unknown>> {
	const id = `${push.kid} ${push.privateKey}`;
	let jwk = publicJwks.get(id);
	if (!jwk) {
		jwk = importPKCS8(push.privateKey, "RS256", { extractable: true })
			.then((key) => exportJWK(key))
			.then(({ kty, n, e }) => ({ kty, n, e, alg: "RS256", use: "sig", kid: push.kid }));
		publicJwks.set(id, jwk);
	}
	return jwk;
}

/** A stable numeric subject for the service account, as Google gives each account a unique id. */
async function subjectOf(email: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(email)));
	return `1${Array.from(digest.subarray(0, 20), (b) => String(b % 10)).join("")}`;
}

/** A fresh OIDC token for one push delivery. */
export async function pushToken(push: GooglePushConfig, now = Date.now()): Promise<string> {
	const iat = Math.floor(now / 1000);
	const sub = await subjectOf(push.serviceAccountEmail);
	return new SignJWT({ azp: sub, email: push.serviceAccountEmail, email_verified: true })
		.setProtectedHeader({ alg: "RS256", kid: push.kid, typ: "JWT" })
		.setIssuer(ISSUER)
		.setAudience(push.audience)
		.setSubject(sub)
		.setIssuedAt(iat)
		.setExpirationTime(iat + TOKEN_LIFETIME_SECONDS)
		.sign(await signingKey(push));
}

/** The headers of one push delivery: without a push key, those of an unauthenticated push subscription. */
export async function pushHeaders(push: GooglePushConfig | undefined): Promise<Record<string, string>> {
	return { "content-type": "application/json", ...(push ? { authorization: `Bearer ${await pushToken(push)}` } : {}) };
}

/** GET /google/oauth2/v3/certs */
export async function certs(c: Context): Promise<Response> {
	const push = configOf(c).google.push;
	return c.json({ keys: push ? [await publicJwk(push)] : [] }, 200, { "cache-control": "public, max-age=3600" });
}
