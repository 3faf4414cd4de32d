/**
 * The appAccountToken an app sets on a purchase (StoreKit's `Product.PurchaseOption.appAccountToken`) so that
 * Apple's signed transaction names the user who bought it. Apple only allows a UUID there, and user ids are
 * often not UUIDs, so an app with `apple.appAccountTokenIsUserUuid` derives the UUID from its user id:
 *
 *   - a user id that already is a UUID is used as it is, lower-cased;
 *   - any other user id becomes the RFC 4122 version 5 UUID (SHA-1) of its UTF-8 bytes in the namespace
 *     APP_ACCOUNT_TOKEN_NAMESPACE below. Any language's uuid library computes the same value:
 *     `uuidv5(userId, "2475ec7a-2bd2-4cae-be7f-d4d3f6faa82d")`.
 *
 * One scheme, documented in the README, so that the app and this service agree without sharing a secret. It
 * is a binding, not a secret: it stops a transaction bought by one account being claimed by another.
 */

/** A fixed namespace for this service's appAccountTokens. Changing it would orphan every existing binding. */
export const APP_ACCOUNT_TOKEN_NAMESPACE = "2475ec7a-2bd2-4cae-be7f-d4d3f6faa82d";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isUuid(value: string): boolean {
	return UUID.test(value);
}

/** The appAccountToken the app must set for `userId` (lower-case UUID text). */
export async function appAccountTokenForUser(userId: string): Promise<string> {
	if (isUuid(userId)) return userId.toLowerCase();
	return uuidV5(APP_ACCOUNT_TOKEN_NAMESPACE, userId);
}

/** RFC 4122 section 4.3: SHA-1 of namespace bytes ‖ name bytes, version 5, variant 10. */
export async function uuidV5(namespace: string, name: string): Promise<string> {
	const ns = hexToBytes(namespace.replaceAll("-", ""));
	const nameBytes = new TextEncoder().encode(name);
	const input = new Uint8Array(ns.length + nameBytes.length);
	input.set(ns, 0);
	input.set(nameBytes, ns.length);
	const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", input)).slice(0, 16);
	hash[6] = (hash[6]! & 0x0f) | 0x50;
	hash[8] = (hash[8]! & 0x3f) | 0x80;
	const hex = Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function hexToBytes(hex: string): Uint8Array {
	if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error("namespace must be a UUID");
	return Uint8Array.from(hex.match(/../g)!, (pair) => Number.parseInt(pair, 16));
}
