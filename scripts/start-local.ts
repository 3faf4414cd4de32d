/**
 * `npm run start:local`: the service alone under `wrangler dev`, with your own configuration, local D1 and
 * Durable Objects; no store emulator. It applies the D1 migrations to the local database first (without them
 * the history table does not exist), then starts `wrangler dev` on SERVICE_PORT (8787), inspector on
 * SERVICE_INSPECTOR_PORT (9229 when free).
 *
 * The configuration is APPS_CONFIG as `wrangler dev` finds it: in .dev.vars when that file exists, else in
 * .env / .env.local or the environment. This script only reads those to say what is missing; it never writes
 * them. (`npm run dev` uses generated files of its own and does not need any of this.)
 */
import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";
import { applyLocalMigrations, HOST, inspectorPort, portFromEnv, requireFree } from "./local.ts";
import { supervise } from "./supervisor.ts";

const command = "start:local";
const HOW = `Write your configuration (README "Configuration") to .dev.vars, which git ignores, as one line with the JSON in
single quotes. From an apps.json file:

  printf "APPS_CONFIG='%s'\\n" "$(node -e 'process.stdout.write(JSON.stringify(require("./apps.json")))')" > .dev.vars

(To try the service without store credentials, use \`npm run dev\` instead: it generates a sample configuration
for the bundled store emulator.)`;

function fail(message: string): never {
	console.error(`${command}: ${message}\n\n${HOW}`);
	process.exit(1);
}

/** Where wrangler dev will take APPS_CONFIG from, and its value (null when it will find none). */
function findConfig(): { source: string; value: string } | null {
	if (existsSync(".dev.vars")) {
		const value = parseEnv(readFileSync(".dev.vars", "utf8")).APPS_CONFIG;
		if (value === undefined || value.trim() === "") fail(".dev.vars has no APPS_CONFIG (wrangler dev reads only .dev.vars when it exists).");
		return { source: ".dev.vars", value };
	}
	if (process.env.APPS_CONFIG?.trim()) return { source: "the environment", value: process.env.APPS_CONFIG };
	for (const file of [".env.local", ".env"]) {
		const value = existsSync(file) ? parseEnv(readFileSync(file, "utf8")).APPS_CONFIG : undefined;
		if (value?.trim()) return { source: file, value };
	}
	return null;
}

const config = findConfig() ?? fail("no APPS_CONFIG: there is no .dev.vars, and neither .env nor the environment sets it.");
try {
	JSON.parse(config.value);
} catch (error) {
	fail(`APPS_CONFIG in ${config.source} is not JSON (${error instanceof Error ? error.message : String(error)}).`);
}
console.log(`${command}: APPS_CONFIG from ${config.source}`);
const local = [...new Set(config.value.match(/https?:\/\/(?:127\.0\.0\.1|localhost)(?::\d+)?/g) ?? [])];
if (local.length > 0) {
	console.log(
		`${command}: note: APPS_CONFIG sends store calls to ${local.join(", ")}, which must be running; start:local does not start ` +
			"the store emulator (npm run dev does). Earlier versions of `npm run dev` wrote their sample configuration to .dev.vars: " +
			"if that file is such a leftover and not yours, delete it.",
	);
}

const SERVICE_PORT = portFromEnv("SERVICE_PORT", 8787);
await requireFree([{ port: SERVICE_PORT, variable: "SERVICE_PORT" }], command);
const SERVICE_INSPECTOR_PORT = await inspectorPort("SERVICE_INSPECTOR_PORT", 9229);
const supervisor = supervise(command);

const migrated = await applyLocalMigrations(supervisor);
if (migrated !== 0) await supervisor.stop(migrated, "applying the local D1 migrations failed");

const child = supervisor.start(
	"wrangler",
	["dev", "--port", String(SERVICE_PORT), "--inspector-port", String(SERVICE_INSPECTOR_PORT), "--ip", HOST, "--show-interactive-dev-session=false"],
	{ stdio: ["ignore", "inherit", "inherit"] },
);
child.on("error", (error) => void supervisor.stop(1, `could not start wrangler (${error.message})`));
child.on("exit", (code, signal) => {
	if (!supervisor.stopping) void supervisor.stop(code ?? 1, `wrangler dev exited (${signal ?? code})`);
});
