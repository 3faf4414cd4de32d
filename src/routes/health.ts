import { Hono } from "hono";
import { signingKey as appleApiKey } from "../apple/api-client";
import { loadConfig } from "../config/load";
import type { Config } from "../config/schema";
import { serviceAccountKey } from "../google/auth";
import type { AppEnv } from "../http/app";
import { APPLY_MIGRATIONS, missingMigrations } from "../ledger/schema";
import { describe } from "../openapi/describe";

/**
 * GET /health: whether a request would find what it needs. The configuration parses; every key in it imports
 * (service accounts, App Store API keys, trusted roots); D1 answers and has every migration this code needs; the
 * claims' Durable Object namespace answers. 200 when all hold, else 503 naming each problem (fields and
 * migrations, never a value). Key imports are checked once per loaded configuration; D1 costs one query and the
 * Durable Object one call per request.
 */

type Problem = { check: "config" | "keys" | "d1" | "durable_objects"; problem: string };

/** A dependency that does not answer must not make /health hang as well. */
const CHECK_TIMEOUT_MS = 5_000;

const keyChecks = new WeakMap<Config, Promise<Problem[]>>();

export const healthRoutes = new Hono<AppEnv>().get("/", describe({
	summary: "Whether a request would find what it needs",
	description: "Configuration, keys, D1 and its migrations, the Durable Object namespace. Problems are named without values.",
	tags: ["Operations"],
	responses: {
		200: { description: "Healthy", example: { status: "ok", apps: 1, checks: { config: "ok", keys: "ok", d1: "ok", durable_objects: "ok" } } },
		503: { description: "misconfigured (an operator must fix something) or unavailable; Retry-After set", example: { status: "misconfigured", problems: ["D1 lacks migration 0005_console.sql: apply migrations/ …"], checks: { config: "ok", keys: "ok", d1: "failing", durable_objects: "ok" } } },
	},
}), async (c) => {
	const loaded = loadConfig(c.env);
	if (!loaded.ok) {
		return c.json({ status: "misconfigured", problems: loaded.error.problems, checks: { config: "failing" } }, 503, { "retry-after": "60" });
	}
	const config = loaded.config;
	let keys = keyChecks.get(config);
	if (!keys) keyChecks.set(config, (keys = checkKeys(config)));
	const problems = (await Promise.all([keys, checkD1(c.env.DB), checkDurableObjects(c.env)])).flat();
	const failing = new Set(problems.map((p) => p.check));
	const checks = Object.fromEntries((["config", "keys", "d1", "durable_objects"] as const).map((name) => [name, failing.has(name) ? "failing" : "ok"]));
	if (problems.length === 0) return c.json({ status: "ok", apps: config.apps.length, checks });
	c.get("log").warn("health_failing", { problems });
	// Keys and a missing schema wait for an operator; a database or namespace that does not answer may recover.
	const misconfigured = problems.some((p) => p.check === "keys" || p.problem.includes("migration"));
	return c.json({ status: misconfigured ? "misconfigured" : "unavailable", problems: problems.map((p) => p.problem), checks }, 503, { "retry-after": misconfigured ? "60" : "5" });
});

async function checkKeys(config: Config): Promise<Problem[]> {
	const checks: Promise<Problem | undefined>[] = [];
	const check = (where: string, key: () => Promise<unknown>) =>
		checks.push(
			key().then(
				() => undefined,
				// The messages of our own key loaders name the key, never its material.
				(err: unknown) => ({ check: "keys", problem: `${where}: ${err instanceof Error ? err.message : "does not import"}` }),
			),
		);
	config.apps.forEach((app, i) => {
		if (app.google) check(`apps[${i}].google.serviceAccount.private_key`, () => serviceAccountKey(app.google!.serviceAccount));
		if (app.apple?.api) check(`apps[${i}].apple.api.privateKey`, () => appleApiKey(app.apple!.api!));
	});
	config.appleTrustStore.roots.forEach((root, i) => check(`appleRootCertificates[${i}]`, () => root.publicKey()));
	return (await Promise.all(checks)).filter((p): p is Problem => p !== undefined);
}

async function checkD1(db: D1Database): Promise<Problem[]> {
	try {
		const missing = await withTimeout(missingMigrations(db), "D1");
		return missing.length === 0 ? [] : [{ check: "d1", problem: `D1 lacks migration ${missing.join(", ")}: ${APPLY_MIGRATIONS}` }];
	} catch (err) {
		return [{ check: "d1", problem: `D1 did not answer: ${describeError(err)}` }];
	}
}

async function checkDurableObjects(env: Env): Promise<Problem[]> {
	try {
		await withTimeout(env.CLAIMS.get(env.CLAIMS.idFromName("health-check")).ping(), "the CLAIMS Durable Object namespace");
		return [];
	} catch (err) {
		return [{ check: "durable_objects", problem: `the CLAIMS Durable Object namespace did not answer: ${describeError(err)}` }];
	}
}

function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} gave no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
	});
	return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
	return err instanceof Error ? err.message.slice(0, 200) : "unknown error";
}
