import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { search } from "../src/console/search";
import type { ServiceEvent } from "../src/events/model";
import { auditOf } from "../src/ledger/audit";
import { dayOf, eventsOf, recordEvent } from "../src/ledger/event-log";
import { findPurchase, findPurchasesBy, listUserPurchases, userPurchasesOf } from "../src/ledger/history";
import { kpiReport } from "../src/ledger/kpis";
import { timelineOf } from "../src/ledger/notifications";
import { deliverNotifications } from "./support/notifications.ts";
import { bearer, call, emulator, eventually, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** The KPIs: what is counted, once, by day; active subscriptions from the history; every query through an index. */

const DAY = 86_400_000;
const today = () => new Date().toISOString().slice(0, 10);

async function kpisToday(query = "") {
	const response = await call("GET", `/v1/kpis?from=${today()}&to=${today()}${query}`, undefined, bearer());
	expect(response.status).toBe(200);
	return (await json(response)).days[0];
}

describe("the day's counts", () => {
	it("count a new purchase with its price, and a sharing attempt as a refusal", async () => {
		const before = await kpisToday();
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		const owner = uniqueUser();
		expect(await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: owner })))).toEqual({ complete_purchase: true });
		expect((await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: uniqueUser("sharer") })))).code).toBe("owned_by_another_user");
		const after = await eventually(async () => {
			const day = await kpisToday();
			return day.newPurchases > before.newPurchases && (day.refusals.owned_by_another_user ?? 0) > (before.refusals.owned_by_another_user ?? 0) ? day : undefined;
		});
		expect(after.newPurchases).toBe(before.newPurchases + 1);
		expect(after.refusals.owned_by_another_user).toBe((before.refusals.owned_by_another_user ?? 0) + 1);
		expect(after.activeSubscriptions).toBeGreaterThanOrEqual(before.activeSubscriptions + 1);
	});

	it("count a refund the store notifies, and a renewal", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_monthly", type: "subscription" });
		await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: uniqueUser() }));
		const before = await eventually(async () => ((await kpisToday()).newPurchases > 0 ? kpisToday() : undefined));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { expiresInSeconds: 60 * 86400 });
		await deliverNotifications();
		await emulator.updateGooglePurchase(purchase.purchaseToken, { refund: true });
		await deliverNotifications();
		const after = await eventually(async () => {
			const day = await kpisToday();
			return day.refunds > before.refunds && day.renewals > before.renewals ? day : undefined;
		});
		expect(after.refunds).toBe(before.refunds + 1);
		expect(after.renewals).toBe(before.renewals + 1);
	});

	it("count an event once however often the queue delivers it", async () => {
		const appId = `kpi-once-${crypto.randomUUID()}`;
		const event = {
			id: crypto.randomUUID(),
			type: "purchase.granted",
			at: Date.now(),
			appId,
			userId: "u",
			store: "app_store",
			claim: "1",
			sequence: 1,
			purchase: { environment: "Production", transactionId: "1", price: 990, currency: "EUR", quantity: 2 },
		} as unknown as ServiceEvent;
		await recordEvent(env.DB, event);
		await recordEvent(env.DB, event);
		const report = await kpiReport(env.DB, { appId, from: today(), to: today(), environment: "Production" });
		expect(report.days[0]).toMatchObject({ newPurchases: 1, revenue: { EUR: 1980 } });
		expect((await eventsOf(env.DB, "app_store", "1")).filter((e) => e.id === event.id)).toHaveLength(1);
	});

	it("answer 400 naming the field for a range they cannot show", async () => {
		const response = await call("GET", "/v1/kpis?from=2026-02-30", undefined, bearer());
		expect(response.status).toBe(400);
		expect((await json(response)).error.field).toBe("from");
		expect((await json(await call("GET", "/v1/kpis?from=2020-01-01&to=2026-01-01", undefined, bearer()))).error.message).toContain("at most 366 days");
	});
});

/** Rows as a claim writes them, at chosen times, for an app of their own. */
async function seed(appId: string, rows: { id: string; purchasedAt: number; expiresAt: number | null; state?: string; userId?: string | null; kind?: string; asOf?: number; environment?: string }[]) {
	await env.DB.batch(
		rows.map((r) =>
			env.DB.prepare(
				`INSERT INTO purchases (store, transaction_id, app_id, user_id, product_id, kind, environment, state, quantity, purchased_at, expires_at, as_of, raw, created_at, updated_at)
				 VALUES ('google_play', ?1, ?2, ?3, 'premium_monthly', ?4, ?5, ?6, 1, ?7, ?8, ?9, 'null', ?7, ?7)`,
			).bind(`${appId}:${r.id}`, appId, r.userId === undefined ? "someone" : r.userId, r.kind ?? "subscription", r.environment ?? "Production", r.state ?? "active", r.purchasedAt, r.expiresAt, r.asOf ?? r.purchasedAt),
		),
	);
}

describe("active subscriptions, day by day", () => {
	it("are those claimed and paid for at each day's end, refunds ending them when refunded", async () => {
		const appId = `kpi-active-${crypto.randomUUID()}`;
		const d0 = Date.parse("2026-03-01T00:00:00Z");
		const at = (day: number, hours = 12) => d0 + day * DAY + hours * 3_600_000;
		await seed(appId, [
			{ id: "a", purchasedAt: at(-10), expiresAt: at(2) }, // active on days 0 and 1, ends during day 2
			{ id: "b", purchasedAt: at(1), expiresAt: at(40) }, // from day 1
			{ id: "c", purchasedAt: at(0), expiresAt: at(40), state: "refunded", asOf: at(3) }, // days 0-2, refunded on day 3
			{ id: "d", purchasedAt: at(0), expiresAt: at(40), userId: null }, // nobody claimed it: not counted
			{ id: "e", purchasedAt: at(0), expiresAt: at(40), kind: "non_consumable" }, // not a subscription
			{ id: "f", purchasedAt: at(0), expiresAt: at(40), environment: "Sandbox" }, // another environment
			{ id: "g", purchasedAt: at(2), expiresAt: at(40), state: "pending" }, // never paid
		]);
		const report = await kpiReport(env.DB, { appId, from: "2026-03-01", to: "2026-03-05", environment: "Production" }, at(30));
		expect(report.days.map((d) => [d.day, d.activeSubscriptions])).toEqual([
			["2026-03-01", 2],
			["2026-03-02", 3],
			["2026-03-03", 2],
			["2026-03-04", 1],
			["2026-03-05", 1],
		]);
		const sandbox = await kpiReport(env.DB, { appId, from: "2026-03-01", to: "2026-03-01", environment: "Sandbox" }, at(30));
		expect(sandbox.days[0]!.activeSubscriptions).toBe(1);
	});

	it("stop at today, counted as of now", async () => {
		const appId = `kpi-now-${crypto.randomUUID()}`;
		const now = Date.now();
		await seed(appId, [
			{ id: "running", purchasedAt: now - DAY, expiresAt: now + DAY },
			{ id: "ended-an-hour-ago", purchasedAt: now - DAY, expiresAt: now - 3_600_000 },
		]);
		const report = await kpiReport(env.DB, { appId, from: dayOf(now - DAY), to: dayOf(now + 5 * DAY), environment: "Production" }, now);
		expect(report.days.map((d) => d.day)).toEqual([dayOf(now - DAY), dayOf(now)]);
		expect(report.days.at(-1)!.activeSubscriptions).toBe(1);
	});
});

/** Captures every statement a read function prepares, to ask SQLite how it would run each. */
function recordingDb(): { db: D1Database; statements: { sql: string; binds: unknown[] }[] } {
	const statements: { sql: string; binds: unknown[] }[] = [];
	const wrap = (sql: string, statement: D1PreparedStatement, entry = { sql, binds: [] as unknown[] }): D1PreparedStatement => {
		if (!statements.includes(entry)) statements.push(entry);
		return new Proxy(statement, {
			get(target, property) {
				if (property === "bind") return (...binds: unknown[]) => ((entry.binds = binds), wrap(sql, target.bind(...binds), entry));
				const value = Reflect.get(target, property);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
	};
	const db = new Proxy(env.DB, {
		get(target, property) {
			if (property === "prepare") return (sql: string) => wrap(sql, target.prepare(sql));
			if (property === "batch") return (list: D1PreparedStatement[]) => target.batch(list);
			const value = Reflect.get(target, property);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { db, statements };
}

describe("every query the console and the KPIs make", () => {
	it("reads through an index, never a full scan of a table", async () => {
		const { db, statements } = recordingDb();
		const appId = "1234";
		await kpiReport(db, { appId, from: "2026-01-01", to: "2026-03-31", environment: "Production" });
		await kpiReport(db, { appId, from: "2026-01-01", to: "2026-01-31", environment: "Sandbox", store: "app_store" });
		await search(db, appId, "GPA.1234-5678-9012-34567");
		await search(db, appId, "2000000123456789");
		await listUserPurchases(db, appId, "user123", 50);
		await listUserPurchases(db, appId, "user123", 50, { purchasedAt: Date.now(), transactionId: "x" });
		await userPurchasesOf(db, appId, "user123", ["premium_monthly", "premium_lifetime"]);
		await findPurchase(db, "google_play", "token");
		await findPurchasesBy(db, appId, { orderId: "GPA.1" });
		await timelineOf(db, "app_store", "2000000123456789", "2000000123456780");
		await eventsOf(db, "app_store", "2000000123456780");
		await auditOf(db, "app_store", "2000000123456780");
		expect(statements.length).toBeGreaterThanOrEqual(20);
		for (const { sql, binds } of statements) {
			const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
				.bind(...binds)
				.all<{ detail: string }>()
				.catch((err: Error) => {
					throw new Error(`${err.message}: ${sql} ${JSON.stringify(binds)}`);
				});
			const plan = results.map((r) => r.detail);
			expect(plan.join("\n"), sql).not.toMatch(/\bSCAN (purchases|daily_counts|events|notifications|ownership_audit)\b/);
			expect(plan.join("\n"), sql).toMatch(/USING (COVERING )?INDEX|USING PRIMARY KEY|USING INTEGER PRIMARY KEY/);
			// An index used by the app alone (or the app and environment) reads every purchase of the app: not an answer.
			expect(plan.join("\n"), sql).not.toMatch(/INDEX \w+ \((app_id=\?|app_id=\? AND environment=\?)\)/);
		}
	});
});
