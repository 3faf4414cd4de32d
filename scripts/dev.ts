/**
 * `npm run dev`: the service (default :8787) and the store emulator (default :8788), both under `wrangler dev`,
 * with local D1 and Durable Objects. Every start generates fresh keys (a Google service account, App Store keys
 * and a test PKI) and writes them to files of their own, passed to wrangler with --env-file:
 *   .dev.vars.generated                (the service's APPS_CONFIG)
 *   test/emulator/.dev.vars.generated  (the emulator's EMULATOR_CONFIG)
 * With --env-file, wrangler reads neither .dev.vars nor .env: a hand-written .dev.vars (your own configuration,
 * for `npm run start:local`) is never read, written or deleted here. APPS_CONFIG and EMULATOR_CONFIG are also
 * removed from the workers' environment, since wrangler lets process.env override env files.
 * Then the D1 migrations are applied to the local database. Nothing here needs store credentials or a network.
 * The emulator sends the stores' notifications to the service itself (EMULATOR_CONFIG.notify.mode "push"), and the
 * service runs with --test-scheduled, so `curl http://127.0.0.1:8787/__scheduled` runs the Cron catch-up.
 *
 * `npm run demo` does the same, then walks through a sample purchase (scripts/demo.ts).
 * Flags: --demo (run the walkthrough once both are up), --exit (stop after the walkthrough: CI, smoke tests).
 * Ports: SERVICE_PORT (8787), EMULATOR_PORT (8788), SERVICE_INSPECTOR_PORT (9229 when free),
 * EMULATOR_INSPECTOR_PORT (9230 when free). LOCAL_STATE_DIR: local state and generated keys in that folder instead.
 * Processes: see scripts/supervisor.ts; whichever of npm and this script is stopped, both workers stop.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { createFixtures } from "../test/support/fixtures.ts";
import { runDemo } from "./demo.ts";
import { applyLocalMigrations, HOST, inspectorPort, localStateDir, persistArgs, portFromEnv, requireFree } from "./local.ts";
import { supervise } from "./supervisor.ts";

const args = new Set(process.argv.slice(2));
const quiet = args.has("--demo");
const command = quiet ? "demo" : "dev";

const SERVICE_PORT = portFromEnv("SERVICE_PORT", 8787);
const EMULATOR_PORT = portFromEnv("EMULATOR_PORT", 8788);
await requireFree(
	[
		{ port: SERVICE_PORT, variable: "SERVICE_PORT" },
		{ port: EMULATOR_PORT, variable: "EMULATOR_PORT" },
	],
	command,
);
const SERVICE_INSPECTOR_PORT = await inspectorPort("SERVICE_INSPECTOR_PORT", 9229);
const EMULATOR_INSPECTOR_PORT = await inspectorPort("EMULATOR_INSPECTOR_PORT", 9230);
if (new Set([SERVICE_PORT, EMULATOR_PORT, SERVICE_INSPECTOR_PORT, EMULATOR_INSPECTOR_PORT]).size < 4) {
	console.error(`${command}: the service, the emulator and their inspectors need four different ports`);
	process.exit(2);
}
const supervisor = supervise(command);
const service = `http://${HOST}:${SERVICE_PORT}`;
const emulator = `http://${HOST}:${EMULATOR_PORT}`;

const stateDir = localStateDir();
if (stateDir) mkdirSync(resolve(stateDir), { recursive: true });
const SERVICE_VARS = resolve(stateDir ? `${stateDir}/service.vars` : ".dev.vars.generated");
const EMULATOR_VARS = resolve(stateDir ? `${stateDir}/emulator.vars` : "test/emulator/.dev.vars.generated");
// The emulator POSTs store notifications to the service itself ("push"), retrying a few times when it fails.
const fixtures = await createFixtures({ emulatorUrl: emulator, serviceUrl: service, notifyMode: "push" });
// Single-quoted: these are dotenv files, and the JSON must reach the Worker byte for byte.
const header = "# Written by `npm run dev` / `npm run demo` at every start (throwaway keys for the store emulator). Your own configuration goes in .dev.vars.\n";
writeFileSync(SERVICE_VARS, `${header}APPS_CONFIG='${JSON.stringify(fixtures.appsConfig)}'\n`, { mode: 0o600 });
writeFileSync(EMULATOR_VARS, `${header}EMULATOR_CONFIG='${JSON.stringify(fixtures.emulatorConfig)}'\n`, { mode: 0o600 });
console.log(`${command}: wrote fresh keys to ${SERVICE_VARS} and ${EMULATOR_VARS}`);

const migrated = await applyLocalMigrations(supervisor);
if (migrated !== 0) await supervisor.stop(migrated, "applying the local D1 migrations failed");

const workerEnv: NodeJS.ProcessEnv = { ...process.env, CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "true" };
delete workerEnv.APPS_CONFIG;
delete workerEnv.EMULATOR_CONFIG;

function startWorker(name: string, argv: string[], cwd?: string): ChildProcess {
	const child = supervisor.start("wrangler", ["dev", ...argv, "--ip", HOST, "--show-interactive-dev-session=false"], {
		stdio: ["ignore", "pipe", "pipe"],
		env: workerEnv,
		...(cwd ? { cwd } : {}),
	});
	// The demo keeps its own output readable: server logs are held back, and shown only if a server dies.
	const held: string[] = [];
	const forward = (stream: NodeJS.ReadableStream | null, write: (text: string) => void) => {
		if (!stream) return;
		createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
			if (line.trim() === "") return;
			const text = `[${name}] ${line}\n`;
			if (quiet) held.push(text);
			else write(text);
		});
	};
	forward(child.stdout, (text) => process.stdout.write(text));
	forward(child.stderr, (text) => process.stderr.write(text));
	child.on("error", (error) => void supervisor.stop(1, `${name}: could not start wrangler (${error.message})`));
	child.on("exit", (code, signal) => {
		if (supervisor.stopping) return;
		if (quiet) process.stderr.write(held.join(""));
		void supervisor.stop(code || 1, `${name} exited (${signal ?? code})`);
	});
	return child;
}

// The emulator runs from its own folder, so that wrangler compares its types with test/emulator/worker-configuration.d.ts.
startWorker(
	"emulator",
	["--port", String(EMULATOR_PORT), "--inspector-port", String(EMULATOR_INSPECTOR_PORT), "--env-file", EMULATOR_VARS, ...(stateDir ? ["--persist-to", resolve(stateDir, "emulator")] : [])],
	"test/emulator",
);
// --test-scheduled: GET /__scheduled runs the Cron Trigger (the catch-up on what store notifications missed).
startWorker("service", ["--port", String(SERVICE_PORT), "--inspector-port", String(SERVICE_INSPECTOR_PORT), "--env-file", SERVICE_VARS, "--test-scheduled", ...persistArgs("service")]);

const up = await Promise.all([waitFor(`${service}/health`), waitFor(`${emulator}/_emulator/calls`)]);
if (!up.every(Boolean)) await supervisor.stop(1, "a worker did not come up within 60 s");
if (quiet) console.log(`${command}: both workers are up (their logs are hidden in the demo; \`npm run dev\` shows them)`);
console.log(`\n${command}: service  ${service}  (try: curl ${service}/health; devtools inspector on port ${SERVICE_INSPECTOR_PORT})`);
console.log(`${command}: emulator ${emulator}  (admin API under /_emulator/, see README; inspector on port ${EMULATOR_INSPECTOR_PORT})`);
console.log(`${command}: store notifications go to ${service}/v1/notifications/{apple,google,amazon}; run the Cron catch-up with: curl ${service}/__scheduled\n`);

if (args.has("--demo")) {
	const ok = await runDemo(service, emulator).catch((error: unknown) => {
		console.error(`\ndemo: the walkthrough failed: ${error instanceof Error ? error.message : String(error)}`);
		return false;
	});
	if (args.has("--exit")) await supervisor.stop(ok ? 0 : 1);
	else if (ok) console.log("\ndemo: done. Both workers keep running for your own requests; Ctrl-C stops them.");
}

async function waitFor(url: string): Promise<boolean> {
	const deadline = Date.now() + 60_000;
	while (Date.now() < deadline && !supervisor.stopping) {
		try {
			const response = await fetch(url);
			if (response.status < 500 || response.status === 503) return true;
		} catch {
			// not up yet
		}
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	return false;
}
