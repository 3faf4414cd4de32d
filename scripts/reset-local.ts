/**
 * `npm run reset:local`: deletes the local state `wrangler dev` keeps between runs (STATE_DIRS in
 * scripts/local.ts): the local D1 database, i.e. every purchase recorded by earlier `npm run dev` / `demo` /
 * `start:local` runs, and the Durable Objects' storage (which user claimed which transaction). The next start
 * applies the migrations to a fresh database. Configuration is not state: .dev.vars is never touched, and the
 * generated .dev.vars.generated files are rewritten at every `npm run dev` anyway.
 *
 * Refuses while a process still has files open there (a running `npm run dev`): deleting a database under a
 * running workerd would leave it writing to files nobody can see. (That check reads /proc, so it runs on Linux;
 * elsewhere, stop the workers first yourself.)
 */
import { existsSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { resolve, sep } from "node:path";
import { STATE_DIRS } from "./local.ts";

const dirs = STATE_DIRS.map((dir) => resolve(dir));

/** Processes with a file open under one of `roots`, from /proc (empty where there is no /proc). */
function holders(roots: string[]): number[] {
	if (!existsSync("/proc/self/fd")) return [];
	const found = new Set<number>();
	for (const entry of readdirSync("/proc")) {
		const pid = Number(entry);
		if (!Number.isInteger(pid) || pid === process.pid) continue;
		let fds: string[];
		try {
			fds = readdirSync(`/proc/${pid}/fd`);
		} catch {
			continue; // gone, or not ours to read
		}
		for (const fd of fds) {
			try {
				const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
				if (roots.some((root) => target === root || target.startsWith(root + sep))) found.add(pid);
			} catch {
				// closed meanwhile
			}
		}
	}
	return [...found];
}

const busy = holders(dirs);
if (busy.length > 0) {
	console.error(
		`reset:local: local state is in use by process ${busy.join(", ")} (a running npm run dev, demo or start:local?). ` +
			"Stop it first, then run npm run reset:local again.",
	);
	process.exit(1);
}

let removed = 0;
for (const [i, dir] of dirs.entries()) {
	if (!existsSync(dir)) continue;
	rmSync(dir, { recursive: true, force: true });
	console.log(`reset:local: deleted ${STATE_DIRS[i]}`);
	removed++;
}
console.log(
	removed > 0
		? "reset:local: local D1 and Durable Objects are empty; the next npm run dev / demo / start:local applies the migrations again."
		: "reset:local: no local state to delete.",
);
