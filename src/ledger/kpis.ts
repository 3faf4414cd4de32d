import type { Environment, Store } from "../purchase";
import type { D1Reader } from "./history";
import { withSchema } from "./schema";

/**
 * KPIs per app, by day (UTC): what happened (new purchases, renewals, refunds, revocations, refusals, revenue) from
 * the daily counts, a few rows a day; and how many subscriptions gave access, from the history through the
 * active_until index (migrations/0005), three index range queries whatever the number of purchases.
 */

const DAY = 86_400_000;
/** The longest range one report covers. */
export const MAX_KPI_DAYS = 366;

export interface KpiQuery {
	appId: string;
	/** Inclusive, YYYY-MM-DD. */
	from: string;
	to: string;
	environment: Environment;
	store?: Store | undefined;
}

export interface KpiDay {
	day: string;
	newPurchases: number;
	renewals: number;
	refunds: number;
	revocations: number;
	activeSubscriptions: number;
	refusals: Record<string, number>;
	revenue: Record<string, number>;
	refunded: Record<string, number>;
}

export interface KpiReport {
	from: string;
	to: string;
	environment: Environment;
	store: Store | null;
	days: KpiDay[];
	totals: Omit<KpiDay, "day" | "activeSubscriptions">;
}

function emptyDay(day: string): KpiDay {
	return { day, newPurchases: 0, renewals: 0, refunds: 0, revocations: 0, activeSubscriptions: 0, refusals: {}, revenue: {}, refunded: {} };
}

function add(record: Record<string, number>, key: string, value: number): void {
	if (value !== 0) record[key] = (record[key] ?? 0) + value;
}

export async function kpiReport(db: D1Reader, query: KpiQuery, now = Date.now()): Promise<KpiReport> {
	const start = Date.parse(`${query.from}T00:00:00Z`);
	const last = Math.min(Date.parse(`${query.to}T00:00:00Z`), Math.floor(now / DAY) * DAY);
	const days: KpiDay[] = [];
	for (let t = start; t <= last && days.length < MAX_KPI_DAYS; t += DAY) days.push(emptyDay(new Date(t).toISOString().slice(0, 10)));
	const report: KpiReport = {
		from: query.from,
		to: query.to,
		environment: query.environment,
		store: query.store ?? null,
		days,
		totals: { newPurchases: 0, renewals: 0, refunds: 0, revocations: 0, refusals: {}, revenue: {}, refunded: {} },
	};
	if (days.length === 0) return report;
	const byDay = new Map(days.map((d) => [d.day, d]));
	// The instants counted: the end of each day (its last millisecond), and now for today.
	const before = start - 1;
	const end = Math.min(start + days.length * DAY - 1, now);
	const store = query.store ?? null;
	// D1 binds JavaScript numbers as REAL: day buckets are cast back to whole days. The indexes are named: without
	// statistics SQLite may pick another index that starts with app_id, which reads every purchase of the app.

	const [counts, base, starts, ends] = (await withSchema(() =>
		db.batch([
			db
				.prepare(
					`SELECT day, metric, dimension, SUM(count) AS count, SUM(amount) AS amount FROM daily_counts
					 WHERE app_id = ?1 AND day >= ?2 AND day <= ?3 AND environment IN (?4, '') AND (?5 IS NULL OR store = ?5)
					 GROUP BY day, metric, dimension`,
				)
				.bind(query.appId, days[0]!.day, days.at(-1)!.day, query.environment, store),
			db
				.prepare(
					`SELECT COUNT(*) AS n FROM purchases INDEXED BY purchases_active_until
					 WHERE app_id = ?1 AND environment = ?2 AND active_until > ?3 AND purchased_at <= ?3 AND (?4 IS NULL OR store = ?4)`,
				)
				.bind(query.appId, query.environment, before, store),
			db
				.prepare(
					`SELECT CAST((purchased_at - ?3 - 1) / ${DAY} AS INTEGER) AS d, COUNT(*) AS n FROM purchases INDEXED BY purchases_subscription_starts
					 WHERE app_id = ?1 AND environment = ?2 AND active_until IS NOT NULL AND purchased_at > ?3 AND purchased_at <= ?4
					 AND active_until > purchased_at AND (?5 IS NULL OR store = ?5)
					 GROUP BY d`,
				)
				.bind(query.appId, query.environment, before, end, store),
			db
				.prepare(
					`SELECT CAST((active_until - ?3 - 1) / ${DAY} AS INTEGER) AS d, COUNT(*) AS n FROM purchases INDEXED BY purchases_active_until
					 WHERE app_id = ?1 AND environment = ?2 AND active_until > ?3 AND active_until <= ?4
					 AND active_until > purchased_at AND (?5 IS NULL OR store = ?5)
					 GROUP BY d`,
				)
				.bind(query.appId, query.environment, before, end, store),
		]),
	)) as [D1Result, D1Result, D1Result, D1Result];

	for (const row of counts.results as { day: string; metric: string; dimension: string; count: number; amount: number }[]) {
		const day = byDay.get(row.day);
		if (!day) continue;
		switch (row.metric) {
			case "new_purchase":
				day.newPurchases += row.count;
				if (row.dimension) add(day.revenue, row.dimension, row.amount);
				break;
			case "renewal":
				day.renewals += row.count;
				if (row.dimension) add(day.revenue, row.dimension, row.amount);
				break;
			case "refund":
				day.refunds += row.count;
				if (row.dimension) add(day.refunded, row.dimension, row.amount);
				break;
			case "revocation":
				day.revocations += row.count;
				break;
			case "refusal":
				add(day.refusals, row.dimension, row.count);
				break;
		}
	}
	const delta = new Array<number>(days.length).fill(0);
	for (const row of starts.results as { d: number; n: number }[]) if (row.d < days.length) delta[row.d]! += row.n;
	for (const row of ends.results as { d: number; n: number }[]) if (row.d < days.length) delta[row.d]! -= row.n;
	let active = (base.results[0] as { n: number } | undefined)?.n ?? 0;
	days.forEach((day, i) => {
		active += delta[i]!;
		day.activeSubscriptions = active;
		const totals = report.totals;
		totals.newPurchases += day.newPurchases;
		totals.renewals += day.renewals;
		totals.refunds += day.refunds;
		totals.revocations += day.revocations;
		for (const [k, v] of Object.entries(day.refusals)) add(totals.refusals, k, v);
		for (const [k, v] of Object.entries(day.revenue)) add(totals.revenue, k, v);
		for (const [k, v] of Object.entries(day.refunded)) add(totals.refunded, k, v);
	});
	return report;
}
