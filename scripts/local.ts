/**
 * What the local scripts share: ports (overridable from the environment so that two checkouts can run side by
 * side), the local state wrangler keeps, and the D1 migrations.
 */
import { createServer } from "node:net";
import type { Supervisor } from "./supervisor.ts";

export const HOST = "127.0.0.1";

/**
 * Local state of `wrangler dev` (the default of its --persist-to): the local D1 database and the Durable
 * Objects' storage. The emulator runs from test/emulator/ and keeps nothing there but its own cache.
 */
export const STATE_DIRS = [".wrangler/state", "test/emulator/.wrangler/state"];

/** A port from the environment variable `name`, else `fallback`; exits on a value that is not a port. */
export function portFromEnv(name: string, fallback: number): number {
	const raw = process.env[name];
	if (raw === undefined || raw.trim() === "") return fallback;
	const port = Number(raw);
	if (!Number.isInteger(port) || port < 1 || port > 65_535) {
		console.error(`${name}=${raw} is not a port number (1-65535)`);
		process.exit(2);
	}
	return port;
}

/** Whether a port can be listened on at HOST (what `wrangler dev --ip 127.0.0.1` will do). */
export function isFree(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const server = createServer();
		server.once("error", () => resolve(false));
		server.listen(port, HOST, () => server.close(() => resolve(true)));
	});
}

/** A port the system says is free now. */
function anyFreePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, HOST, () => {
			const address = server.address();
			server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
		});
	});
}

/**
 * The devtools inspector port: `name` from the environment when set, else `fallback` when free, else any free
 * port (so that a second checkout's `npm run dev` does not collide on 9229 without anyone asking).
 */
export async function inspectorPort(name: string, fallback: number): Promise<number> {
	if (process.env[name]?.trim()) return portFromEnv(name, fallback);
	return (await isFree(fallback)) ? fallback : anyFreePort();
}

/** Exits with a message naming the variables to set when a port someone else holds is wanted. */
export async function requireFree(ports: { port: number; variable: string }[], command: string): Promise<void> {
	for (const { port, variable } of ports) {
		if (!(await isFree(port))) {
			const example = ports.map(({ variable: v, port: p }) => `${v}=${p + 10}`).join(" ");
			console.error(
				`${command}: port ${port} on ${HOST} is in use (another checkout's \`npm run dev\`?). ` +
					`Choose other ports with ${ports.map(({ variable: v }) => v).join(" and ")}, e.g.\n  ${example} npm run ${command}`,
			);
			process.exit(1);
		}
	}
}

/**
 * LOCAL_STATE_DIR: keep this run's local D1, Durable Objects and generated keys in a folder of its own instead of
 * .wrangler/state (the end-to-end tests start `npm run dev` in a fresh one, beside a developer's own).
 */
export function localStateDir(): string | undefined {
	const dir = process.env.LOCAL_STATE_DIR?.trim();
	return dir ? dir : undefined;
}

/** --persist-to for wrangler, when LOCAL_STATE_DIR is set; `name` keeps each worker's state apart. */
export function persistArgs(name: string): string[] {
	const dir = localStateDir();
	return dir ? ["--persist-to", `${dir}/${name}`] : [];
}

/** Applies migrations/ to the local D1 database (no prompt: CI=true is wrangler's non-interactive mode). */
export function applyLocalMigrations(supervisor: Supervisor): Promise<number> {
	return supervisor.run("wrangler", ["d1", "migrations", "apply", "iap-edge", "--local", ...persistArgs("service")], {
		stdio: ["ignore", "inherit", "inherit"],
		env: { ...process.env, CI: "true" },
	});
}
