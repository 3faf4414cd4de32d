import { ConfigSchema, type AppConfig, type Config } from "./schema";

/** APPS_CONFIG could not be used. The message names the fields to fix and never repeats a value. */
export class ConfigError extends Error {
	constructor(readonly problems: string[]) {
		super(`APPS_CONFIG is invalid: ${problems.join("; ")}`);
		this.name = "ConfigError";
	}
}

type Parsed = { ok: true; config: Config } | { ok: false; error: ConfigError };

let cache: { raw: string | undefined; parsed: Parsed } | undefined;

/**
 * Parses APPS_CONFIG once per isolate (again only if the secret changes). A bad config is remembered too,
 * so every request answers the same clear error instead of re-parsing or crash-looping.
 */
export function loadConfig(env: { APPS_CONFIG?: string }): Parsed & { fresh: boolean } {
	const raw = env.APPS_CONFIG;
	if (cache && cache.raw === raw) return { ...cache.parsed, fresh: false };
	const parsed = parse(raw);
	cache = { raw, parsed };
	return { ...parsed, fresh: true };
}

function parse(raw: string | undefined): Parsed {
	if (raw === undefined || raw.trim() === "") {
		return fail(["APPS_CONFIG is not set: `wrangler secret put APPS_CONFIG` (or .dev.vars locally), see README"]);
	}
	let json: unknown;
	try {
		json = JSON.parse(raw);
	} catch (err) {
		return fail([notJson(raw, err)]);
	}
	if (typeof json === "string") return fail(["APPS_CONFIG is a JSON string, not an object: it was quoted twice (write the JSON object itself)"]);
	const result = ConfigSchema.safeParse(json);
	if (!result.success) {
		return fail(result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`));
	}
	return { ok: true, config: result.data };
}

/**
 * Where the JSON breaks, as line and column, never the text around it: JSON.parse's own message quotes the input,
 * which holds private keys. A value that starts with a quote was most likely pasted with the quotes of a .dev.vars
 * line or a shell command around it.
 */
function notJson(raw: string, err: unknown): string {
	const position = err instanceof SyntaxError ? /position (\d+)/.exec(err.message)?.[1] : undefined;
	let where = "";
	if (position !== undefined) {
		const before = raw.slice(0, Number(position));
		const line = before.split("\n").length;
		const column = before.length - before.lastIndexOf("\n");
		where = ` at line ${line}, column ${column}`;
	} else if (err instanceof SyntaxError && /end of (JSON )?input/i.test(err.message)) {
		where = " (it ends too early: a bracket or quote is not closed)";
	}
	const quoted = /^\s*["']/.test(raw) ? `; it starts with a quote character: the value must be the JSON object itself, without quotes around it` : "";
	return `APPS_CONFIG is not valid JSON${where}${quoted}`;
}

function fail(problems: string[]): Parsed {
	return { ok: false, error: new ConfigError(problems) };
}

function formatPath(path: PropertyKey[]): string {
	if (path.length === 0) return "(top level)";
	return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

export function findApp(config: Config, appId: string): AppConfig | undefined {
	return config.apps.find((app) => app.id === appId);
}
