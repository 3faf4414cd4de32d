import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { build } from "esbuild";
import { defineConfig } from "vitest/config";
import { createFixtures } from "./test/support/fixtures.ts";

/** The emulator's address as the service sees it in tests: every outbound request is routed to it. */
const EMULATOR_URL = "http://store-emulator.test";
const EMULATOR_BUNDLE = ".tmp/store-emulator.js";

export default defineConfig(async () => {
	const [migrations, fixtures] = await Promise.all([
		readD1Migrations("./migrations"),
		// Store notifications wait in the emulator's outbox ("hold"): tests deliver them through the service's fetch
		// handler (test/support/notifications.ts). Pages of two exercise the history and voided lists' paging. Amazon
		// SNS's certificate is fetched from an SNS host, as in production (the service keeps its default host check).
		createFixtures({
			emulatorUrl: EMULATOR_URL,
			storeTimeoutMs: 1_500,
			includeTestApps: true,
			serviceUrl: "https://iap-edge.test",
			notifyMode: "hold",
			storePageSize: 2,
			sampleWebhook: false,
			webhookRetrySeconds: 0,
			amazonSnsUrl: "https://sns.us-east-1.amazonaws.com/amazon/sns",
		}),
		// Auxiliary workers are plain JavaScript to Miniflare: bundle the emulator once per run.
		build({
			entryPoints: ["test/emulator/src/index.ts"],
			bundle: true,
			format: "esm",
			platform: "neutral",
			// The Standard Webhooks library (the emulator's webhook receiver) is CommonJS with only a "main" field.
			mainFields: ["module", "main"],
			target: "es2023",
			outfile: EMULATOR_BUNDLE,
			logLevel: "warning",
		}),
	]);

	return {
		plugins: [
			cloudflareTest({
				wrangler: { configPath: "./wrangler.toml" },
				miniflare: {
					// These override .dev.vars, so a developer's `npm run dev` configuration never leaks into tests.
					// (Without a .dev.vars, wrangler warns that APPS_CONFIG is missing: it is provided right here.)
					bindings: {
						APPS_CONFIG: JSON.stringify(fixtures.appsConfig),
						TEST_MIGRATIONS: migrations,
						TEST_EMULATOR_URL: EMULATOR_URL,
						// Google's push-token key as the emulator holds it: tests forge tokens with Google's key but another
						// audience or account, as anyone with a Google Cloud project can obtain.
						TEST_GOOGLE_PUSH: JSON.stringify((fixtures.emulatorConfig as { google: { push: unknown } }).google.push),
					},
					// No request leaves a test unannounced: the service's fetches all reach the emulator, which
					// refuses hosts that are not its own.
					// A second database that never gets migrations: what a deployment that skipped them looks like.
					d1Databases: { EMPTY_DB: "empty-db-for-tests" },
					// The real Rate Limiting binding, with limits a test can reach. The helpers give every request its own client
					// address, as real traffic would have, so only tests that share one address on purpose meet the limit.
					ratelimits: {
						VERIFY_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 20, period: 60 } },
						API_RATE_LIMITER: { namespace_id: "1002", simple: { limit: 1000, period: 60 } },
					},
					// The events queue as wrangler.toml has it, quicker: batches without waiting, and fewer retries before the
					// dead-letter queue, so a test sees a delivery given up on in seconds.
					queueConsumers: {
						"iap-edge-events": { maxBatchSize: 25, maxBatchTimeout: 0, maxRetries: 3, deadLetterQueue: "iap-edge-events-dlq" },
						"iap-edge-events-dlq": { maxBatchSize: 25, maxBatchTimeout: 0 },
					},
					outboundService: "store-emulator",
					workers: [
						{
							name: "store-emulator",
							modules: true,
							scriptPath: EMULATOR_BUNDLE,
							compatibilityDate: "2026-11-01",
							bindings: { EMULATOR_CONFIG: JSON.stringify(fixtures.emulatorConfig) },
						},
					],
				},
			}),
		],
		test: {
			include: ["test/**/*.test.ts"],
			// The end-to-end suite runs in Node against `npm run dev`: vitest.e2e.config.ts.
			exclude: ["test/e2e/**"],
			setupFiles: ["./test/setup.ts"],
			testTimeout: 30_000,
			// Service logs are JSON lines; show them only for tests that fail.
			silent: "passed-only" as const,
		},
	};
});
