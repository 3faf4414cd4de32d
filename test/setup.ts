import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, expect } from "vitest";
import { amazonSecrets } from "./support/amazon-service.ts";
import { capturedLogLines, installLogCapture } from "./support/log-capture.ts";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Amazon's shared secret is part of every RVS URL: no line logged while any test file runs may hold it, as written
// or URL-encoded.
installLogCapture();
afterAll(() => {
	const secrets = amazonSecrets().flatMap((secret) => [secret, encodeURIComponent(secret)]);
	const leaks = capturedLogLines().filter((line) => secrets.some((secret) => line.includes(secret)));
	expect(leaks, "log lines holding an Amazon shared secret").toEqual([]);
});
