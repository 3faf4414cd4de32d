import { decodeProtectedHeader, jwtVerify } from "jose";
import type { AppleEmulatorConfig } from "./config";
import { appleApiPublicKey } from "./keys";

/**
 * The App Store Server API's bearer token check: ES256, signed by the registered key named by `kid`, `iss` that
 * key's issuer id, `aud` "appstoreconnect-v1", `bid` an app that key may ask about, and a lifetime of at most
 * 60 minutes that has not run out. Apple answers any failure with a bare 401. Apple's documentation:
 * https://developer.apple.com/documentation/appstoreserverapi/generating-json-web-tokens-for-api-requests
 */

const MAX_LIFETIME_SECONDS = 3600;
/** Small allowance for clocks, as any token checker has; tests of expiry use tokens far past it. */
const CLOCK_TOLERANCE_SECONDS = 5;

export interface AppleCaller {
	keyId: string;
	issuerId: string;
	bundleId: string;
}

/** The caller behind an Authorization header, or the reason it is refused (for the emulator's log only). */
export async function authenticateApple(authorization: string | undefined, config: AppleEmulatorConfig): Promise<AppleCaller | { refused: string }> {
	const match = /^Bearer ([^\s]+)$/.exec(authorization ?? "");
	if (!match) return { refused: "no bearer token" };
	const token = match[1]!;
	let kid: unknown;
	try {
		const header = decodeProtectedHeader(token);
		if (header.alg !== "ES256") return { refused: `alg ${String(header.alg)}` };
		kid = header.kid;
	} catch {
		return { refused: "malformed token" };
	}
	const key = config.apiKeys.find((k) => k.keyId === kid);
	if (!key) return { refused: "unknown kid" };
	let claims;
	try {
		({ payload: claims } = await jwtVerify(token, await appleApiPublicKey(key), {
			algorithms: ["ES256"],
			audience: "appstoreconnect-v1",
			issuer: key.issuerId,
			requiredClaims: ["iat", "exp", "bid"],
			clockTolerance: CLOCK_TOLERANCE_SECONDS,
		}));
	} catch (err) {
		return { refused: err instanceof Error ? err.message : "rejected" };
	}
	const iat = Number(claims.iat);
	const exp = Number(claims.exp);
	if (!(exp > iat) || exp - iat > MAX_LIFETIME_SECONDS) return { refused: "lifetime over 60 minutes" };
	if (iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS) return { refused: "issued in the future" };
	const bundleId = String(claims.bid);
	if (!key.bundleIds.includes(bundleId)) return { refused: `bid ${bundleId} is not an app of this key` };
	return { keyId: key.keyId, issuerId: key.issuerId, bundleId };
}
