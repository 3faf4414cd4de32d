const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/**
 * Digests of configured secrets (API keys, verify keys, console keys), by the secret: each is hashed once per
 * isolate rather than on every request. The secrets are in memory already, in the parsed configuration; when a new
 * configuration's secrets have filled the map, it starts again.
 */
const configured = new Map<string, Promise<ArrayBuffer>>();
const MAX_CONFIGURED = 1024;

function digestOfConfigured(secret: string): Promise<ArrayBuffer> {
	let known = configured.get(secret);
	if (!known) {
		if (configured.size >= MAX_CONFIGURED) configured.clear();
		known = digest(secret);
		configured.set(secret, known);
	}
	return known;
}

/**
 * Constant-time equality for secrets. Both sides are hashed first so the comparison also hides the length.
 */
export async function secretEquals(candidate: string, expected: string): Promise<boolean> {
	const [a, b] = await Promise.all([digest(candidate), digest(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Which of the configured `secrets` `candidate` is, or -1. Every secret is compared, whatever matches first, so the
 * time taken does not say which key (or how many) a deployment has.
 */
export async function indexOfSecret(candidate: string, secrets: readonly string[]): Promise<number> {
	return (await findSecret(candidate, [secrets]))?.index ?? -1;
}

/**
 * Which secret of which group (each app's API keys, say) `candidate` is: the candidate hashed once, then compared in
 * constant time with every configured secret of every group, whatever matches first.
 */
export async function findSecret(candidate: string, groups: readonly (readonly string[])[]): Promise<{ group: number; index: number } | undefined> {
	const [presented, expected] = await Promise.all([digest(candidate), Promise.all(groups.map((secrets) => Promise.all(secrets.map(digestOfConfigured))))]);
	let found: { group: number; index: number } | undefined;
	expected.forEach((digests, group) =>
		digests.forEach((known, index) => {
			if (crypto.subtle.timingSafeEqual(presented, known) && !found) found = { group, index };
		}),
	);
	return found;
}
