const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/**
 * Constant-time equality for secrets. Both sides are hashed first so the comparison also hides the length.
 */
export async function secretEquals(candidate: string, expected: string): Promise<boolean> {
	const [a, b] = await Promise.all([digest(candidate), digest(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Which of `secrets` `candidate` is, or -1. Every secret is compared, whatever matches first, so the time taken
 * does not say which key (or how many) a deployment has.
 */
export async function indexOfSecret(candidate: string, secrets: readonly string[]): Promise<number> {
	const results = await Promise.all(secrets.map((s) => secretEquals(candidate, s)));
	return results.indexOf(true);
}
