import { Misconfigured } from "../answers";

/**
 * The D1 schema this code needs: the files in migrations/, in order (test/health.test.ts checks the list against
 * the folder). Applied by wrangler (`d1 migrations apply`), which records each in d1_migrations; never at request
 * time.
 */
export const MIGRATIONS: readonly string[] = ["0001_purchases.sql", "0002_lifecycle.sql", "0003_ownership.sql", "0004_webhooks.sql", "0005_console.sql", "0006_audit_outcome.sql"];

/** What an operator runs when the schema is missing or behind. */
export const APPLY_MIGRATIONS =
	"apply migrations/ to D1: `npm run start:local` applies them locally before starting, `npm run deploy` remotely (or `npx wrangler d1 migrations apply iap-edge --local|--remote`)";

/** D1 reports a missing table or column when migrations were never applied (or not all of them). */
export function isSchemaMissing(err: unknown): boolean {
	return err instanceof Error && /no such (table|column)/i.test(err.message);
}

/** Why a D1 operation failed, as the ledger reports it: an operator must apply migrations, or D1 may answer later. */
export function d1Failure(err: unknown): "schema_missing" | "unavailable" {
	return isSchemaMissing(err) || err instanceof Misconfigured ? "schema_missing" : "unavailable";
}

/** Runs a D1 operation; a missing schema becomes Misconfigured naming the command to run, never a 500. */
export async function withSchema<T>(operation: () => Promise<T>): Promise<T> {
	try {
		return await operation();
	} catch (err) {
		if (isSchemaMissing(err)) throw new Misconfigured(`the D1 database has no schema: ${APPLY_MIGRATIONS}`, err);
		throw err;
	}
}

/** The migrations this code needs that D1 has not recorded as applied, in one query. */
export async function missingMigrations(db: D1Database): Promise<string[]> {
	let applied: Set<string>;
	try {
		const { results } = await db.prepare(`SELECT name FROM d1_migrations`).all<{ name: string }>();
		applied = new Set(results.map((row) => row.name));
	} catch (err) {
		if (!isSchemaMissing(err)) throw err;
		applied = new Set();
	}
	return MIGRATIONS.filter((name) => !applied.has(name));
}
