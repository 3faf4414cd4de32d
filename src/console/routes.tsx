import { Hono, type Context } from "hono";
import * as z from "zod";
import { findApp } from "../config/load";
import type { AppConfig } from "../config/schema";
import { entitlementsOf } from "../entitlements";
import { enforceRateLimit } from "../http/rate-limit";
import { ApiError } from "../http/errors";
import { userIdField } from "../http/fields";
import { readSession } from "../http/session";
import { listUserPurchases, userPurchasesOf } from "../ledger/history";
import { kpiReport } from "../ledger/kpis";
import { movePurchase } from "../ledger/ownership";
import { purchaseDetail } from "../ledger/purchase-detail";
import { reverifyPurchase } from "../lifecycle/reverify";
import { describe } from "../openapi/describe";
import { STORES, type Store } from "../purchase";
import { KpiQuery } from "../routes/kpis";
import { Cursor, encodeCursor } from "../routes/users";
import { checkCsrf, consoleKeyFor, csrfToken, endSession, maySee, requireConsoleUser, startSession, visibleApps, type ConsoleEnv } from "./auth";
import { CustomerPage, ErrorPage, HomePage, KpiPage, PurchasePage, purchasePath, SearchPage, SignInPage } from "./pages";
import { page } from "./render";
import { htmlSecurity } from "./security";
import { search } from "./search";

/**
 * /console: the support console, server-rendered. Every page reads through the same functions the API answers
 * from (src/ledger), and every action goes through the same ones the API acts through, audited with the console
 * user's name (never a key). Sign-in and CSRF: src/console/auth.ts.
 */

const html = { 200: { description: "An HTML page", media: "text/html", example: "<!doctype html>…" } };
const redirect = { 303: { description: "Where to go next (a page of the console)" } };
const consoleDoc = (summary: string, responses: Parameters<typeof describe>[0]["responses"] = html, security: ("consoleSession" | "cloudflareAccess")[] = ["consoleSession", "cloudflareAccess"]) =>
	describe({ summary, tags: ["Console"], security, responses: { ...responses, 403: { description: "Not allowed: another app's data, or a form without its CSRF token", media: "text/html" } } });

const AppParam = z.object({ appId: z.string().min(1).max(256) });
const PurchaseParam = AppParam.extend({ store: z.enum(STORES), transactionId: z.string().min(1).max(1024) });
const reason = z.string().trim().min(1, { error: "say why: it is kept in the audit trail" }).max(1000);
const ReasonForm = z.object({ reason });
const TransferForm = z.object({ reason, toUserId: userIdField });

/** The app named in the path, if this user may see it; else a 404 page that says no more than that. */
function appFor(c: Context<ConsoleEnv>): AppConfig {
	const { appId } = AppParam.parse(c.req.param());
	const app = findApp(c.get("config"), appId);
	if (!app || !maySee(c.get("user"), app)) throw new ApiError("not_found", `no app "${appId}" here for ${c.get("user").name}`);
	return app;
}

function firstProblem(error: z.ZodError): string {
	const issue = error.issues[0]!;
	return `${issue.path.join(".") || "form"}: ${issue.message}`;
}

/** A safe place to go after signing in: a console path, never another site. */
function nextPath(value: unknown): string {
	return typeof value === "string" && /^\/console(\/|$|\?)/.test(value) && !value.startsWith("//") ? value : "/console";
}

export const consoleRoutes = new Hono<ConsoleEnv>()
	.use("*", htmlSecurity, csrfToken, checkCsrf)
	.onError((err, c) => {
		if (err instanceof ApiError && err.code === "not_found") return page(c, <ErrorPage title="Not found" message={err.message} />, 404);
		throw err;
	})
	.get("/sign-in", consoleDoc("Sign-in form", html, []), (c) => {
		const consoleConfig = c.get("config").console;
		return page(c, <SignInPage csrf={c.get("csrf")} next={nextPath(c.req.query("next"))} keys={(consoleConfig?.keys.length ?? 0) > 0} access={consoleConfig?.access !== undefined} />);
	})
	.post("/sign-in", consoleDoc("Sign in with a console key (form: key, _csrf)", { ...redirect, 401: { description: "A wrong key: the form again, with why", media: "text/html" } }, []), async (c) => {
		const consoleConfig = c.get("config").console;
		// Counted per address before the key is looked at, so guessing keys is limited too.
		await enforceRateLimit(c.env.API_RATE_LIMITER, `console-sign-in:${c.req.header("cf-connecting-ip") ?? "unknown"}`, "from this address");
		const form = await c.req.parseBody();
		const next = nextPath(form.next);
		const key = typeof form.key === "string" && consoleConfig ? await consoleKeyFor(consoleConfig, form.key) : undefined;
		if (!key || !consoleConfig) {
			c.get("log").warn("console_sign_in_refused", {});
			return page(c, <SignInPage csrf={c.get("csrf")} next={next} error="That console key is not valid." keys={(consoleConfig?.keys.length ?? 0) > 0} access={consoleConfig?.access !== undefined} />, 401);
		}
		await startSession(c, consoleConfig, key);
		c.get("log").info("console_signed_in", { user: key.name });
		return c.redirect(next, 303);
	})
	.post("/sign-out", consoleDoc("Sign out", redirect, []), (c) => {
		endSession(c);
		return c.redirect("/console/sign-in", 303);
	})
	.use("*", requireConsoleUser)
	.get("/", consoleDoc("The apps this user sees, with a search box each"), (c) => page(c, <HomePage user={c.get("user")} csrf={c.get("csrf")} apps={visibleApps(c.get("user"), c.get("config"))} />))
	.get("/apps/:appId", consoleDoc("An app's search page"), (c) => page(c, <SearchPage user={c.get("user")} csrf={c.get("csrf")} app={appFor(c)} result={null} />))
	.get("/apps/:appId/search", consoleDoc("Search by user id, transaction id, order id or original transaction id (?q=)"), async (c) => {
		const app = appFor(c);
		const q = (c.req.query("q") ?? "").trim().slice(0, 1024);
		if (!q) return c.redirect(`/console/apps/${encodeURIComponent(app.id)}`, 303);
		const result = await search(readSession(c), app.id, q);
		// One purchase and no customer: straight to it.
		if (!result.user && result.purchases.length === 1) {
			const { entry } = result.purchases[0]!;
			return c.redirect(purchasePath(app, entry.store, entry.transactionId), 303);
		}
		return page(c, <SearchPage user={c.get("user")} csrf={c.get("csrf")} app={app} result={result} />);
	})
	.get("/apps/:appId/users/:userId", consoleDoc("A customer: entitlements and purchases, newest first (?cursor=)"), async (c) => {
		const app = appFor(c);
		const userId = userIdField.safeParse(c.req.param("userId"));
		if (!userId.success) throw new ApiError("not_found", "that is not a user id");
		// An old or edited link reads as the first page.
		const cursor = Cursor.safeParse(c.req.query("cursor") ?? "").data;
		const db = readSession(c);
		const products = [...new Set(Object.values(app.entitlements).flat())];
		const [history, owned] = await Promise.all([listUserPurchases(db, app.id, userId.data, 50, cursor), userPurchasesOf(db, app.id, userId.data, products)]);
		return page(
			c,
			<CustomerPage
				user={c.get("user")}
				csrf={c.get("csrf")}
				app={app}
				userId={userId.data}
				purchases={history.entries}
				next={history.next ? encodeCursor(history.next) : null}
				entitlements={products.length > 0 ? entitlementsOf(app, owned) : []}
			/>,
		);
	})
	.get("/apps/:appId/purchases/:store/:transactionId", consoleDoc("A purchase: owner, state, claim, timeline, audit trail, actions"), async (c) => {
		const app = appFor(c);
		const { store, transactionId } = PurchaseParam.parse(c.req.param());
		const detail = await purchaseDetail(c.env, readSession(c), app.id, store, transactionId);
		if (!detail) throw new ApiError("not_found", `no such purchase in app ${app.id}`);
		const done = c.req.query("done");
		return page(c, <PurchasePage user={c.get("user")} csrf={c.get("csrf")} app={app} detail={detail} notice={done ? { kind: "done", text: done.slice(0, 300) } : undefined} />);
	})
	.post("/apps/:appId/purchases/:store/:transactionId/:action{reverify|transfer|revoke}", consoleDoc("Re-verify, transfer or revoke (form: reason, toUserId for a transfer, _csrf)", { ...redirect, 400: { description: "The purchase page again, saying what is missing", media: "text/html" } }), async (c) => {
		const app = appFor(c);
		const { store, transactionId } = PurchaseParam.parse(c.req.param());
		const action = c.req.param("action") as "reverify" | "transfer" | "revoke";
		const user = c.get("user");
		const form = await c.req.parseBody();
		const parsed = (action === "transfer" ? TransferForm : ReasonForm).safeParse(form);
		let message: string;
		if (!parsed.success) {
			return problem(c, app, store, transactionId, firstProblem(parsed.error));
		}
		const { reason } = parsed.data;
		if (action === "reverify") {
			const outcome = await reverifyPurchase(c.env, app, c.get("config"), store, transactionId, user.actor, reason);
			if (outcome.status === "not_found") throw new ApiError("not_found", `no such purchase in app ${app.id}`);
			if (outcome.status === "cannot_ask") return problem(c, app, store, transactionId, outcome.message);
			message =
				outcome.status === "refused"
					? `The store no longer vouches for it (${outcome.code}: ${outcome.message}); nothing changed.`
					: outcome.after !== outcome.before
						? `Re-verified: the store says ${outcome.after} (was ${outcome.before}).`
						: `Re-verified: the store still says ${outcome.after}.`;
		} else {
			const toUserId = action === "transfer" ? (parsed.data as z.output<typeof TransferForm>).toUserId : null;
			const outcome = await movePurchase(c.env, app.id, user.actor, store, transactionId, toUserId, reason);
			if (outcome.status === "not_found") return problem(c, app, store, transactionId, outcome.message);
			message = action === "transfer" ? `Transferred from ${outcome.fromUserId ?? "nobody"} to ${outcome.toUserId}.` : `Revoked: ${outcome.fromUserId ?? "nobody"} no longer has it, nor anyone else.`;
		}
		c.get("log").info("console_action", { action, store, user: user.actor });
		return c.redirect(`${purchasePath(app, store, transactionId)}?done=${encodeURIComponent(message)}`, 303);
	})
	.get("/apps/:appId/kpis", consoleDoc("KPIs by day: charts and the table (?from=&to=&environment=&store=)"), async (c) => {
		const app = appFor(c);
		const raw = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ""));
		const parsed = KpiQuery.safeParse(raw);
		const query = parsed.success ? parsed.data : KpiQuery.parse({});
		const report = await kpiReport(readSession(c), { appId: app.id, ...query });
		return page(c, <KpiPage user={c.get("user")} csrf={c.get("csrf")} app={app} report={report} error={parsed.success ? undefined : firstProblem(parsed.error)} />, parsed.success ? 200 : 400);
	});

async function problem(c: Context<ConsoleEnv>, app: AppConfig, store: Store, transactionId: string, text: string): Promise<Response> {
	const detail = await purchaseDetail(c.env, readSession(c), app.id, store, transactionId);
	if (!detail) throw new ApiError("not_found", `no such purchase in app ${app.id}`);
	return page(c, <PurchasePage user={c.get("user")} csrf={c.get("csrf")} app={app} detail={detail} notice={{ kind: "error", text }} />, 400);
}
