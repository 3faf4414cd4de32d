/**
 * `npm run dev`: the service on :8787 and the store emulator on :8788, both under `wrangler dev`, with
 * local D1 and Durable Objects. Every start generates fresh keys (a Google service account, App Store
 * keys and a test PKI), writes them to .dev.vars (service) and test/emulator/.dev.vars (emulator), and
 * applies the D1 migrations. Nothing here needs store credentials or a network.
 *
 * `npm run demo` does the same, then walks through a sample purchase (scripts/demo.ts).
 * Flags: --demo (run the walkthrough once both are up), --exit (stop after the walkthrough: CI, smoke tests).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createFixtures } from "../test/support/fixtures.ts";
import { runDemo } from "./demo.ts";

const SERVICE_PORT = 8787;
const EMULATOR_PORT = 8788;
const args = new Set(process.argv.slice(2));
const quiet = args.has("--demo");

const fixtures = await createFixtures({ emulatorUrl: `http://127.0.0.1:${EMULATOR_PORT}` });
// Single-quoted: .dev.vars is dotenv, and the JSON must reach the Worker byte for byte.
writeFileSync(".dev.vars", `APPS_CONFIG='${JSON.stringify(fixtures.appsConfig)}'\n`, { mode: 0o600 });
writeFileSync("test/emulator/.dev.vars", `EMULATOR_CONFIG='${JSON.stringify(fixtures.emulatorConfig)}'\n`, { mode: 0o600 });
console.log("dev: wrote fresh keys to .dev.vars and test/emulator/.dev.vars");

const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "iap-edge", "--local"], { stdio: "inherit", env: { ...process.env, CI: "true" } });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const children: ChildProcess[] = [];
function start(name: string, argv: string[]): ChildProcess {
	const child = spawn("wrangler", ["dev", ...argv, "--ip", "127.0.0.1", "--show-interactive-dev-session=false"], {
		stdio: ["ignore", "pipe", "pipe"],
	});
	const prefix = (chunk: Buffer) =>
		chunk
			.toString()
			.split("\n")
			.filter((line) => line.trim() !== "")
			.map((line) => `[${name}] ${line}\n`)
			.join("");
	// The demo keeps its own output readable: server logs are held back, and shown only if a server dies.
	const held: string[] = [];
	const forward = (write: (text: string) => void) => (chunk: Buffer) => (quiet ? held.push(prefix(chunk)) : write(prefix(chunk)));
	child.stdout?.on("data", forward((text) => process.stdout.write(text)));
	child.stderr?.on("data", forward((text) => process.stderr.write(text)));
	child.on("exit", () => {
		if (!stopping && quiet) process.stderr.write(held.join(""));
	});
	child.on("exit", (code) => {
		if (!stopping) {
			console.error(`dev: ${name} exited (${code}); stopping`);
			stop(code ?? 1);
		}
	});
	children.push(child);
	return child;
}

let stopping = false;
function stop(code: number): void {
	stopping = true;
	for (const child of children) child.kill("SIGTERM");
	setTimeout(() => process.exit(code), 500);
}
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

start("emulator", ["--config", "test/emulator/wrangler.toml", "--port", String(EMULATOR_PORT), "--inspector-port", "9230"]);
start("service", ["--port", String(SERVICE_PORT), "--inspector-port", "9229"]);

await Promise.all([waitFor(`http://127.0.0.1:${SERVICE_PORT}/health`), waitFor(`http://127.0.0.1:${EMULATOR_PORT}/_emulator/calls`)]);
if (quiet) console.log("dev: both workers are up (their logs are hidden in the demo; `npm run dev` shows them)");
console.log(`\ndev: service  http://127.0.0.1:${SERVICE_PORT}  (try: curl http://127.0.0.1:${SERVICE_PORT}/health)`);
console.log(`dev: emulator http://127.0.0.1:${EMULATOR_PORT}  (admin API under /_emulator/, see README)\n`);

if (args.has("--demo")) {
	const ok = await runDemo(`http://127.0.0.1:${SERVICE_PORT}`, `http://127.0.0.1:${EMULATOR_PORT}`);
	if (args.has("--exit")) stop(ok ? 0 : 1);
	else if (ok) console.log("\ndemo: done. Both workers keep running for your own requests; Ctrl-C stops them.");
}

async function waitFor(url: string): Promise<void> {
	const deadline = Date.now() + 60_000;
	while (Date.now() < deadline) {
		try {
			const response = await fetch(url);
			if (response.status < 500 || response.status === 503) return;
		} catch {
			// not up yet
		}
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	console.error(`dev: ${url} did not come up within 60 s`);
	stop(1);
}
