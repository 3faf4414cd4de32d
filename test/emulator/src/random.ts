/** Random ids in the stores' shapes: decimal digits (order and transaction ids), base64url (tokens). */

export function randomDigits(n: number): string {
	const bytes = crypto.getRandomValues(new Uint8Array(n));
	return Array.from(bytes, (b) => String(b % 10)).join("");
}

export function randomToken(bytes: number): string {
	const raw = crypto.getRandomValues(new Uint8Array(bytes));
	return btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}
