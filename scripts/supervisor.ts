/**
 * Child processes that do not outlive the script that starts them (scripts/dev.ts, scripts/start-local.ts).
 *
 * `wrangler dev` is a tree: a node wrapper, the wrangler CLI, esbuild and one or more workerd processes.
 * Signalling only the wrapper can leave workerd running, so each child is started in a process group of its
 * own (`detached`), and stopping signals the whole group: SIGTERM first, SIGKILL for whatever is left after a
 * grace period. The script stops its children when:
 *   - it receives SIGINT, SIGTERM or SIGHUP (Ctrl-C in a terminal, `kill` to npm, which forwards the signal
 *     to the script when the npm script starts it with `exec`, or to the script itself);
 *   - its parent goes away (npm or the shell killed): the script checks its parent process id every second;
 *   - it dies without a chance to clean up (SIGKILL, a crash): a small watchdog process, in a group of its own,
 *     holds a pipe from the script; when the pipe closes without the script releasing it, the watchdog stops
 *     the groups it was told about.
 * Process groups and negative pids to kill(2) are POSIX: this runs on Linux and macOS.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

const GRACE_MS = 5_000;

export interface Supervisor {
	/** Starts a command in a process group of its own, stopped with everything else. */
	start(command: string, args: string[], options?: SpawnOptions): ChildProcess;
	/** Starts a command and resolves with its exit code (1 if it was killed or could not start). */
	run(command: string, args: string[], options?: SpawnOptions): Promise<number>;
	/** Stops every group and exits the script with `code`. Later calls wait for the first. */
	stop(code: number, reason?: string): Promise<never>;
	readonly stopping: boolean;
}

export function supervise(name: string): Supervisor {
	const groups = new Set<number>();
	const watchdog = startWatchdog();
	let stopping: Promise<never> | undefined;

	const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
		try {
			process.kill(-pgid, signal);
			return true;
		} catch {
			return false; // ESRCH: nothing left in that group
		}
	};

	function start(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
		const child = spawn(command, args, { ...options, detached: true });
		const pgid = child.pid;
		if (pgid !== undefined) {
			groups.add(pgid);
			watchdog.watch(pgid);
			// A group whose leader exited may still hold a workerd: keep it until it is empty.
			child.on("exit", () => {
				if (!signalGroup(pgid, 0)) {
					groups.delete(pgid);
					watchdog.forget(pgid);
				}
			});
		}
		return child;
	}

	function run(command: string, args: string[], options: SpawnOptions = {}): Promise<number> {
		return new Promise((resolve) => {
			const child = start(command, args, options);
			child.on("error", (error) => {
				console.error(`${name}: could not start ${command}: ${error.message}`);
				resolve(1);
			});
			child.on("exit", (code) => resolve(code ?? 1));
		});
	}

	function stop(code: number, reason?: string): Promise<never> {
		stopping ??= (async () => {
			if (reason) console.error(`${name}: ${reason}; stopping`);
			for (const pgid of groups) signalGroup(pgid, "SIGTERM");
			const deadline = Date.now() + GRACE_MS;
			while ([...groups].some((pgid) => signalGroup(pgid, 0)) && Date.now() < deadline) {
				await new Promise((resolve) => setTimeout(resolve, 100));
			}
			for (const pgid of groups) {
				if (signalGroup(pgid, "SIGKILL")) console.error(`${name}: process group ${pgid} did not stop within ${GRACE_MS / 1000} s: killed`);
			}
			groups.clear();
			watchdog.release();
			process.exit(code);
		})();
		return stopping;
	}

	// Ctrl-C reaches the script (and npm) but not the children, which are in groups of their own: the script
	// stops them. A second signal while stopping changes nothing: the grace period ends in SIGKILL anyway.
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		process.on(signal, () => void stop(0, `received ${signal}`));
	}
	const parent = process.ppid;
	setInterval(() => {
		if (process.ppid !== parent) void stop(1, "parent process went away");
	}, 1_000).unref();
	// Last resort on any exit path that skipped stop(): nothing may survive the script.
	process.on("exit", () => {
		for (const pgid of groups) signalGroup(pgid, "SIGKILL");
	});

	return {
		start,
		run,
		stop,
		get stopping() {
			return stopping !== undefined;
		},
	};
}

/**
 * The watchdog: `node -e` in a session of its own, reading "+pgid" / "-pgid" / "release" lines from a pipe
 * whose other end only this script holds. End of input without "release" means the script is gone: the
 * watchdog sends SIGTERM to the groups it still guards, then SIGKILL after the grace period.
 */
function startWatchdog(): { watch(pgid: number): void; forget(pgid: number): void; release(): void } {
	const program = `
		const groups = new Set();
		let buffer = "";
		const kill = (signal) => { for (const g of groups) { try { process.kill(-g, signal); } catch {} } };
		process.stdin.setEncoding("utf8");
		process.stdin.on("data", (chunk) => {
			buffer += chunk;
			for (let i; (i = buffer.indexOf("\\n")) >= 0; ) {
				const line = buffer.slice(0, i);
				buffer = buffer.slice(i + 1);
				if (line === "release") process.exit(0);
				if (line[0] === "+") groups.add(Number(line.slice(1)));
				if (line[0] === "-") groups.delete(Number(line.slice(1)));
			}
		});
		process.stdin.on("end", () => {
			if (groups.size === 0) process.exit(0);
			kill("SIGTERM");
			setTimeout(() => { kill("SIGKILL"); process.exit(0); }, ${GRACE_MS});
		});
	`;
	const dog = spawn(process.execPath, ["-e", program], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
	dog.on("error", () => {}); // without a watchdog, the signal and exit handlers still stop the children
	dog.unref();
	const pipe = dog.stdin;
	(pipe as unknown as { unref?: () => void } | null)?.unref?.();
	pipe?.on("error", () => {});
	const send = (line: string) => {
		if (pipe?.writable) pipe.write(`${line}\n`);
	};
	return {
		watch: (pgid) => send(`+${pgid}`),
		forget: (pgid) => send(`-${pgid}`),
		release: () => send("release"),
	};
}
