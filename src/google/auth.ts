import { SignJWT, importPKCS8 } from "jose";
import type { GoogleServiceAccount } from "../config/schema";
import { Misconfigured, StoreUnreachable } from "../answers";
import { readJson, retryAfterSeconds, storeFetch } from "../fetch";
import * as z from "zod";

/**
 * OAuth 2.0 access tokens for a service account (RFC 7523 JWT bearer grant, as Google documents for
 * server-to-server calls). A token is cached per service account until shortly before it expires, and
 * concurrent requests share one refresh, so a burst of verifications costs one token request.
 */

export const ANDROID_PUBLISHER_SCOPE = "https://www.googleapis.com/auth/androidpublisher";
/** Refresh this long before Google's expiry, so a token never dies in flight. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/** Google refuses assertions that live longer than an hour. */
const ASSERTION_LIFETIME_SECONDS = 3600;

/** RFC 6749 section 5.2: what a token endpoint says when it refuses a grant. */
const TokenError = z.looseObject({ error: z.string(), error_description: z.string().optional() });

const TokenResponse = z.object({
	access_token: z.string().min(1),
	expires_in: z.number().positive(),
	token_type: z.string().optional(),
});

interface CachedToken {
	accessToken: string;
	refreshAt: number;
}

const tokens = new Map<string, CachedToken>();
const inFlight = new Map<string, Promise<CachedToken>>();
const signingKeys = new Map<string, Promise<CryptoKey>>();

/** A token belongs to one account, endpoint and key: a rotated key never reuses the old key's token. Never logged. */
function cacheKey(account: GoogleServiceAccount): string {
	return `${account.client_email} ${account.token_uri} ${account.private_key}`;
}

export async function getAccessToken(account: GoogleServiceAccount, timeoutMs: number): Promise<string> {
	const key = cacheKey(account);
	const cached = tokens.get(key);
	if (cached && cached.refreshAt > Date.now()) return cached.accessToken;
	let pending = inFlight.get(key);
	if (!pending) {
		pending = fetchToken(account, timeoutMs).finally(() => inFlight.delete(key));
		inFlight.set(key, pending);
	}
	return (await pending).accessToken;
}

/** Forget a token Google no longer accepts (a 401 from the API), so the next call mints a new one. */
export function invalidateAccessToken(account: GoogleServiceAccount, accessToken: string): void {
	const key = cacheKey(account);
	if (tokens.get(key)?.accessToken === accessToken) tokens.delete(key);
}

async function fetchToken(account: GoogleServiceAccount, timeoutMs: number): Promise<CachedToken> {
	const assertion = await signAssertion(account);
	const body = new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion });
	const response = await storeFetch(
		"google_play",
		account.token_uri,
		{ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" }, body },
		timeoutMs,
	);
	if (response.status === 429 || response.status >= 500) {
		await response.body?.cancel();
		throw new StoreUnreachable("google_play", `Google's token endpoint answered ${response.status}`, { retryAfterSeconds: retryAfterSeconds(response) });
	}
	const json = await readJson("google_play", response);
	if (!response.ok) {
		// A refused assertion is this deployment's misconfiguration (wrong key, deleted or disabled account), never a
		// verdict on the purchase. Google's own words (RFC 6749 error and description) tell the operator which.
		const refused = TokenError.safeParse(json);
		const reason = refused.success ? [refused.data.error, refused.data.error_description].filter(Boolean).join(": ") : "no OAuth error in the answer";
		throw new Misconfigured(`Google's token endpoint refused service account ${account.client_email} (${response.status} ${printable(reason)})`);
	}
	const parsed = TokenResponse.safeParse(json);
	if (!parsed.success) throw new StoreUnreachable("google_play", "token endpoint answered an unexpected shape");
	const token: CachedToken = {
		accessToken: parsed.data.access_token,
		refreshAt: Date.now() + Math.max(0, parsed.data.expires_in * 1000 - REFRESH_MARGIN_MS),
	};
	tokens.set(cacheKey(account), token);
	return token;
}

/** A store's words, made safe for a log line and a message: printable, and short. */
function printable(text: string): string {
	return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

/** The service account's RSA key, imported once per isolate; Misconfigured when it is not one (never quoting it). */
export function serviceAccountKey(account: GoogleServiceAccount): Promise<CryptoKey> {
	let key = signingKeys.get(account.private_key);
	if (!key) {
		key = importPKCS8(account.private_key, "RS256").catch((err: unknown) => {
			signingKeys.delete(account.private_key);
			throw new Misconfigured(`the private_key of Google service account ${account.client_email} is not a usable RSA key`, err);
		});
		signingKeys.set(account.private_key, key);
	}
	return key;
}

async function signAssertion(account: GoogleServiceAccount): Promise<string> {
	const key = serviceAccountKey(account);
	const now = Math.floor(Date.now() / 1000);
	return new SignJWT({ scope: ANDROID_PUBLISHER_SCOPE })
		.setProtectedHeader({ alg: "RS256", typ: "JWT", ...(account.private_key_id ? { kid: account.private_key_id } : {}) })
		.setIssuer(account.client_email)
		.setAudience(account.token_uri)
		.setIssuedAt(now)
		.setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
		.sign(await key);
}
