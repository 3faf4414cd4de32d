/**
 * Every line the service logs while the tests run (console.log/info/warn/error/debug in this isolate, where the
 * service's fetch handler and its Durable Objects run), kept so that tests can say what never appears in a log: the
 * setup file checks each test file's lines for Amazon's shared secrets. Lines still reach the console as before.
 */
const LEVELS = ["log", "info", "warn", "error", "debug"] as const;
const lines: string[] = [];
const INSTALLED = Symbol.for("iap-edge.log-capture");

export function installLogCapture(): void {
	const holder = globalThis as { [INSTALLED]?: boolean };
	if (holder[INSTALLED]) return;
	holder[INSTALLED] = true;
	for (const level of LEVELS) {
		const original = console[level].bind(console);
		console[level] = (...args: unknown[]) => {
			lines.push(args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack ?? ""}` : safeJson(a))).join(" "));
			original(...args);
		};
	}
}

export function capturedLogLines(): readonly string[] {
	return lines;
}

function safeJson(value: unknown): string {
	try {
		return JSON.stringify(value) ?? String(value);
	} catch {
		return String(value);
	}
}
