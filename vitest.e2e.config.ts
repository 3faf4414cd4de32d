import { defineConfig } from "vitest/config";

/**
 * The end-to-end suite, in Node: `npm run dev` started on free ports with a local state of its own
 * (test/e2e/dev-server.ts), then driven as a user would: a real browser (Debian's Chromium through playwright-core)
 * on the console, and the OpenAPI document checked with validators that need Node.
 */
export default defineConfig({
	test: {
		include: ["test/e2e/**/*.test.ts"],
		environment: "node",
		globalSetup: ["./test/e2e/dev-server.ts"],
		fileParallelism: false,
		testTimeout: 60_000,
		hookTimeout: 120_000,
	},
});
