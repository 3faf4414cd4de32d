/**
 * Global set-up of the end-to-end suite: `npm run dev` (scripts/dev.ts) on four ports the system says are free,
 * never 8787/8788 (other checkouts run theirs there), with LOCAL_STATE_DIR in .tmp/ so this run's D1 and Durable
 * Objects start empty and a developer's own `npm run dev` state is left alone. Stopped (both workers, workerd
 * included) when the suite ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import type { TestProject } from "vitest/node";

declare module "vitest" {
	export interface ProvidedContext {
		service: string;
		emulator: string;
	}
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
		});
	});
}

async function waitFor(url: string, child: ChildProcess, ms: number): Promise<void> {
	const deadline = Date.now() + ms;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`npm run dev exited (${child.exitCode}) before ${url} answered`);
		try {
			if ((await fetch(url)).status < 500) return;
		} catch {
			// not up yet
		}
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	throw new Error(`${url} did not answer within ${ms / 1000} s`);
}

let child: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<() => Promise<void>> {
	const ports = new Set<number>();
	while (ports.size < 4) {
		const port = await freePort();
		if (port !== 8787 && port !== 8788) ports.add(port);
	}
	const [service, emulator, serviceInspector, emulatorInspector] = [...ports];
	const stateDir = `.tmp/e2e-state-${process.pid}`;
	rmSync(stateDir, { recursive: true, force: true });
	const output: string[] = [];
	child = spawn(process.execPath, ["scripts/dev.ts"], {
		env: {
			...process.env,
			SERVICE_PORT: String(service),
			EMULATOR_PORT: String(emulator),
			SERVICE_INSPECTOR_PORT: String(serviceInspector),
			EMULATOR_INSPECTOR_PORT: String(emulatorInspector),
			LOCAL_STATE_DIR: stateDir,
		},
		stdio: ["ignore", "pipe", "pipe"],
	});
	child.stdout!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
	child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
	const serviceUrl = `http://127.0.0.1:${service}`;
	const emulatorUrl = `http://127.0.0.1:${emulator}`;
	try {
		await waitFor(`${serviceUrl}/health`, child, 120_000);
		await waitFor(`${emulatorUrl}/_emulator/calls`, child, 30_000);
	} catch (err) {
		await stop();
		throw new Error(`${(err as Error).message}\n--- npm run dev said:\n${output.join("").slice(-4000)}`);
	}
	project.provide("service", serviceUrl);
	project.provide("emulator", emulatorUrl);
	return async () => {
		await stop();
		rmSync(stateDir, { recursive: true, force: true });
	};
}

/** SIGTERM to scripts/dev.ts, which stops both workers' process groups; then waits for it to exit. */
async function stop(): Promise<void> {
	const running = child;
	if (!running || running.exitCode !== null) return;
	const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
	running.kill("SIGTERM");
	const timeout = setTimeout(() => running.kill("SIGKILL"), 15_000);
	await exited;
	clearTimeout(timeout);
}
