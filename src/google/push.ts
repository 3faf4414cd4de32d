/**
 * Authenticating a Pub/Sub push (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions): an
 * authenticated push subscription sends `Authorization: Bearer <OIDC token>`, an RS256 JWT Google signs, naming
 * the subscription's audience and service account. Verified against Google's published keys, which are cached
 * for as long as their Cache-Control allows and fetched again when a token names a key not in hand (Google
 * rotates them).
 */
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from "jose";
import * as z from "zod";
import { InvalidNotification, StoreUnreachable } from "../answers";
import type { GooglePushConfig } from "../config/schema";
import { readJson, storeFetch } from "../fetch";

/** Google issues these tokens under either spelling of its issuer. */
const ISSUERS = ["https://accounts.google.com", "accounts.google.com"];
/** Keys are fetched again at most this often when a token names an unknown key, so junk tokens cannot make us hammer Google. */
const MIN_REFETCH_MS = 60_000;
/** When Google's answer says nothing about caching. */
const DEFAULT_MAX_AGE_MS = 60 * 60 * 1000;

const Jwks = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })) });
const Claims = z.looseObject({ email: z.string().optional(), email_verified: z.union([z.boolean(), z.literal("true")]).optional() });

interface CachedKeys {
	keys: ReturnType<typeof createLocalJWKSet>;
	kids: Set<string>;
	fetchedAt: number;
	expiresAt: number;
}

const keysByUrl = new Map<string, CachedKeys>();
const fetching = new Map<string, Promise<CachedKeys>>();

export interface PushIdentity {
	email: string;
	audience: string;
}

/**
 * The push's identity, once its token verifies: signature by one of Google's keys, issuer, expiry, and the
 * audience and service account `expected` names, with the e-mail verified. Anything else is refused as
 * unauthenticated before the message is read any further.
 */
export async function authenticatePush(
	authorization: string | undefined,
	expected: GooglePushConfig,
	options: { certsUrl: string; timeoutMs: number; now?: number },
): Promise<PushIdentity> {
	const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
	if (!token) throw new InvalidNotification("unauthenticated", "a Pub/Sub push must carry its OIDC token as `Authorization: Bearer <token>`");
	const kid = headerKid(token);
	let keys = await googleKeys(options.certsUrl, options.timeoutMs, options.now);
	if (kid !== undefined && !keys.kids.has(kid) && Date.now() - keys.fetchedAt >= MIN_REFETCH_MS) keys = await googleKeys(options.certsUrl, options.timeoutMs, options.now, true);
	let payload: unknown;
	try {
		({ payload } = await jwtVerify(token, keys.keys, {
			issuer: ISSUERS,
			audience: expected.audience,
			algorithms: ["RS256"],
			...(options.now === undefined ? {} : { currentDate: new Date(options.now) }),
		}));
	} catch (err) {
		if (err instanceof joseErrors.JOSEError) throw new InvalidNotification("unauthenticated", `the push's OIDC token does not verify (${err.code})`);
		throw err;
	}
	const claims = Claims.parse(payload);
	if (claims.email !== expected.serviceAccountEmail) throw new InvalidNotification("unauthenticated", "the push's OIDC token names another service account than the one configured");
	if (claims.email_verified !== true && claims.email_verified !== "true") throw new InvalidNotification("unauthenticated", "the push's OIDC token does not say its e-mail is verified");
	return { email: claims.email, audience: expected.audience };
}

/** The token's key id, read without trusting anything else in it (jose verifies the rest). */
function headerKid(token: string): string | undefined {
	try {
		const header = JSON.parse(atob(token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/"))) as { kid?: unknown };
		return typeof header.kid === "string" ? header.kid : undefined;
	} catch {
		return undefined;
	}
}

async function googleKeys(url: string, timeoutMs: number, now = Date.now(), refresh = false): Promise<CachedKeys> {
	const cached = keysByUrl.get(url);
	if (cached && !refresh && cached.expiresAt > now) return cached;
	let pending = fetching.get(url);
	if (!pending) {
		pending = fetchKeys(url, timeoutMs).finally(() => fetching.delete(url));
		fetching.set(url, pending);
	}
	return pending;
}

async function fetchKeys(url: string, timeoutMs: number): Promise<CachedKeys> {
	const response = await storeFetch("google_play", url, { headers: { accept: "application/json" } }, timeoutMs);
	if (!response.ok) {
		await response.body?.cancel();
		throw new StoreUnreachable("google_play", `Google's OIDC keys (${url}) answered ${response.status}`);
	}
	const parsed = Jwks.safeParse(await readJson("google_play", response));
	if (!parsed.success) throw new StoreUnreachable("google_play", "Google's OIDC keys are not a JWK set");
	const now = Date.now();
	const entry: CachedKeys = {
		keys: createLocalJWKSet(parsed.data as JSONWebKeySet),
		kids: new Set(parsed.data.keys.flatMap((k) => (k.kid === undefined ? [] : [k.kid]))),
		fetchedAt: now,
		expiresAt: now + maxAgeMs(response.headers.get("cache-control")),
	};
	keysByUrl.set(url, entry);
	return entry;
}

function maxAgeMs(cacheControl: string | null): number {
	if (cacheControl === null || /no-store|no-cache/i.test(cacheControl)) return cacheControl === null ? DEFAULT_MAX_AGE_MS : 0;
	const seconds = /max-age=(\d+)/i.exec(cacheControl)?.[1];
	return seconds === undefined ? DEFAULT_MAX_AGE_MS : Number(seconds) * 1000;
}
