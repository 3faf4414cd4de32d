/**
 * JSON logs, one object per line, always carrying the request id. Workers Logs (observability) indexes
 * the fields. Callers pass facts, never credentials: nothing here redacts for them, so keep secrets out.
 */
export type LogLevel = "info" | "warn" | "error";

export interface Logger {
	readonly requestId: string;
	info(event: string, fields?: Record<string, unknown>): void;
	warn(event: string, fields?: Record<string, unknown>): void;
	error(event: string, fields?: Record<string, unknown>): void;
}

export function createLogger(requestId: string, base: Record<string, unknown> = {}): Logger {
	const log = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
		const line = JSON.stringify({ level, event, request_id: requestId, ...base, ...fields }, errorReplacer);
		if (level === "error") console.error(line);
		else if (level === "warn") console.warn(line);
		else console.log(line);
	};
	return {
		requestId,
		info: (e, f) => log("info", e, f),
		warn: (e, f) => log("warn", e, f),
		error: (e, f) => log("error", e, f),
	};
}

function errorReplacer(_key: string, value: unknown): unknown {
	if (value instanceof Error) return { name: value.name, message: value.message };
	return value;
}
