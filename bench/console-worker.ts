/**
 * The console's and the KPIs' reads, in workerd, against two D1 databases seeded alike but for size: SMALL with
 * 1,000 purchases, LARGE with 100,000 (bench/console.ts). Each request runs one case once against one of them.
 */
import { search } from "../src/console/search";
import { findPurchase, listUserPurchases, userPurchasesOf } from "../src/ledger/history";
import { kpiReport } from "../src/ledger/kpis";

interface Env {
	SMALL: D1Database;
	LARGE: D1Database;
}

const DAY = 86_400_000;
const APP = "bench-app";

/** One statement: `n` purchases over a year, 20,000 users, 60 % subscriptions, a few refunded, 2 % Sandbox. */
function seedPurchases(db: D1Database, n: number, now: number): D1PreparedStatement {
	return db
		.prepare(
			`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
			 INSERT INTO purchases (store, transaction_id, app_id, user_id, original_transaction_id, subscription_id, order_id, product_id, kind,
				environment, state, quantity, purchased_at, expires_at, will_renew, price, currency, as_of, raw, created_at, updated_at)
			 SELECT CASE WHEN i % 2 = 0 THEN 'google_play' ELSE 'app_store' END, printf('tx-%09d', i), ?2, printf('user-%05d', i % (?1 / 5)),
				NULL, CASE WHEN i % 5 < 3 THEN printf('tx-%09d', i) END, printf('GPA.%04d-%04d-%04d', i / 100000000, (i / 10000) % 10000, i % 10000),
				CASE WHEN i % 5 < 3 THEN 'premium_monthly' ELSE 'premium_lifetime' END, CASE WHEN i % 5 < 3 THEN 'subscription' ELSE 'non_consumable' END,
				CASE WHEN i % 50 = 0 THEN 'Sandbox' ELSE 'Production' END, CASE WHEN i % 40 = 0 THEN 'refunded' WHEN i % 7 = 0 THEN 'canceled' ELSE 'active' END,
				1, ?3 - (i % 365) * ${DAY} - (i % 86400) * 1000, CASE WHEN i % 5 < 3 THEN ?3 - (i % 365) * ${DAY} - (i % 86400) * 1000 + 30 * ${DAY} END,
				CASE WHEN i % 5 < 3 THEN i % 7 <> 0 END, 4990, 'USD', ?3 - (i % 365) * ${DAY}, 'null', ?3, ?3
			 FROM n`,
		)
		.bind(n, APP, now);
}

/** The daily counts a year of such an app has: every metric, every day, both stores. */
function seedCounts(db: D1Database, now: number): D1PreparedStatement {
	return db
		.prepare(
			`WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 364),
			 m(metric, dimension) AS (VALUES ('new_purchase', 'USD'), ('renewal', 'USD'), ('refund', 'USD'), ('revocation', 'store'), ('refusal', 'owned_by_another_user'), ('refusal', 'expired'), ('refusal', 'invalid_purchase')),
			 s(store) AS (VALUES ('google_play'), ('app_store'))
			 INSERT INTO daily_counts (app_id, day, store, environment, metric, dimension, count, amount)
			 SELECT ?1, date(?2 / 1000 - i * 86400, 'unixepoch'), store, 'Production', metric, dimension, 1 + i % 17, 4990 * (1 + i % 17) FROM d, m, s`,
		)
		.bind(APP, now);
}

async function seed(db: D1Database, n: number, migrations: string[]): Promise<void> {
	for (const query of migrations) await db.prepare(query).run();
	const now = Date.now();
	await db.batch([seedPurchases(db, n, now), seedCounts(db, now)]);
}

const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString().slice(0, 10);

const CASES: Record<string, (db: D1Database) => Promise<unknown>> = {
	"purchase.lookup": (db) => findPurchase(db, "google_play", "tx-000000500"),
	"kpis.30_days": (db) => kpiReport(db, { appId: APP, from: daysAgo(29), to: today(), environment: "Production" }),
	"kpis.365_days": (db) => kpiReport(db, { appId: APP, from: daysAgo(364), to: today(), environment: "Production" }),
	"search.user": (db) => search(db, APP, "user-00042"),
	"search.order": (db) => search(db, APP, "GPA.0000-0000-0500"),
	customer: (db) => Promise.all([listUserPurchases(db, APP, "user-00042", 50), userPurchasesOf(db, APP, "user-00042", ["premium_monthly", "premium_lifetime"])]),
};

export default {
	async fetch(request: Request, env: Env): Promise<Response> {
		const url = new URL(request.url);
		const db = url.searchParams.get("db") === "large" ? env.LARGE : env.SMALL;
		if (url.pathname === "/seed") {
			const { n, migrations } = (await request.json()) as { n: number; migrations: string[] };
			await seed(db, n, migrations);
			const { results } = await db.prepare(`SELECT COUNT(*) AS n FROM purchases`).all<{ n: number }>();
			return Response.json({ purchases: results[0]!.n });
		}
		const run = CASES[url.searchParams.get("case") ?? ""];
		if (!run) return new Response("no such case", { status: 404 });
		const result = await run(db);
		return Response.json({ ok: true, size: JSON.stringify(result).length });
	},
};


