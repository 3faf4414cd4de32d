// Bindings that exist only in tests (vitest.config.ts), beside the generated Env.
declare namespace Cloudflare {
	interface Env {
		TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
		TEST_EMULATOR_URL: string;
		EMPTY_DB: D1Database;
		TEST_GOOGLE_PUSH: string;
	}
}
