import type { Child, FC } from "hono/jsx";
import type { AppConfig } from "../config/schema";
import type { Entitlement } from "../entitlements";
import type { HistoryEntry } from "../ledger/history";
import type { KpiReport } from "../ledger/kpis";
import type { PurchaseDetail } from "../ledger/purchase-detail";
import { currentState, isEntitled, STORES, type Store } from "../purchase";
import type { ConsoleUser } from "./auth";
import { CSRF_FIELD } from "./auth";
import { Layout } from "./layout";
import type { SearchResult } from "./search";

/**
 * The console's pages, rendered on the server: semantic HTML (landmarks, one h1, labelled fields, tables with
 * headers), usable with the keyboard and a screen reader, and on a phone (public/assets/site.css). Nothing here
 * reads data: src/console/routes.tsx hands each page what the API's own read functions return.
 */

export const when = (ms: number | null | undefined) => (ms === null || ms === undefined ? "—" : new Date(ms).toISOString().replace("T", " ").slice(0, 16) + " UTC");
export const money = (milli: number, currency: string) => `${(milli / 1000).toFixed(2)} ${currency}`;
const STORE_NAMES: Record<Store, string> = { google_play: "Google Play", app_store: "App Store", amazon: "Amazon Appstore" };
const storeName = (store: string) => STORE_NAMES[store as Store] ?? store;
export const appPath = (app: AppConfig) => `/console/apps/${encodeURIComponent(app.id)}`;
export const purchasePath = (app: AppConfig, store: string, transactionId: string) => `${appPath(app)}/purchases/${store}/${encodeURIComponent(transactionId)}`;
export const customerPath = (app: AppConfig, userId: string) => `${appPath(app)}/users/${encodeURIComponent(userId)}`;

const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name={CSRF_FIELD} value={token} />;

const Header: FC<{ user: ConsoleUser; csrf: string; app?: AppConfig | undefined }> = ({ user, csrf, app }) => (
	<header class="bar">
		<nav aria-label="Console">
			<a href="/console" class="brand">
				iap-edge console
			</a>
			{app ? (
				<>
					<a href={appPath(app)}>App {app.id}: search</a>
					<a href={`${appPath(app)}/kpis`}>KPIs</a>
				</>
			) : null}
		</nav>
		<form method="post" action="/console/sign-out" class="signout">
			<Csrf token={csrf} />
			<span class="who">{user.name}</span> <button type="submit">Sign out</button>
		</form>
	</header>
);

export const ConsolePage: FC<{ title: string; user: ConsoleUser; csrf: string; app?: AppConfig | undefined; scripts?: string[]; styles?: string[]; children?: Child }> = (props) => (
	<Layout title={`${props.title} · iap-edge console`} scripts={props.scripts ?? []} styles={props.styles ?? []} header={<Header user={props.user} csrf={props.csrf} app={props.app} />}>
		<main id="main" tabindex={-1}>
			<h1>{props.title}</h1>
			{props.children}
		</main>
	</Layout>
);

export const Notice: FC<{ kind: "error" | "done"; children?: Child }> = ({ kind, children }) => (
	<p class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
		{children}
	</p>
);

export const SignInPage: FC<{ csrf: string; next: string; error?: string | undefined; keys: boolean; access: boolean }> = ({ csrf, next, error, keys, access }) => (
	<Layout title="Sign in · iap-edge console">
		<main id="main" tabindex={-1} class="narrow">
			<h1>Sign in to the iap-edge console</h1>
			{error ? <Notice kind="error">{error}</Notice> : null}
			{keys ? (
				<form method="post" action="/console/sign-in" class="stack">
					<Csrf token={csrf} />
					<input type="hidden" name="next" value={next} />
					<label for="key">Console key</label>
					<input id="key" name="key" type="password" required autocomplete="current-password" />
					<button type="submit">Sign in</button>
				</form>
			) : (
				<p>No console keys are configured (console.keys in APPS_CONFIG).</p>
			)}
			{access ? <p>This console is also behind Cloudflare Access: open it through your team's Access login to sign in with your identity provider.</p> : null}
		</main>
	</Layout>
);

export const HomePage: FC<{ user: ConsoleUser; csrf: string; apps: AppConfig[] }> = ({ user, csrf, apps }) => (
	<ConsolePage title="Apps" user={user} csrf={csrf}>
		{apps.length === 0 ? <p>This console user sees no apps.</p> : null}
		<ul class="cards">
			{apps.map((app) => (
				<li>
					<h2>App {app.id}</h2>
					<p class="muted">{[app.google ? `Google Play ${app.google.packageName}` : null, app.apple ? `App Store ${app.apple.bundleId}` : null].filter(Boolean).join(" · ") || "no store configured"}</p>
					<SearchForm app={app} />
					<p>
						<a href={`${appPath(app)}/kpis`}>KPIs for app {app.id}</a>
					</p>
				</li>
			))}
		</ul>
	</ConsolePage>
);

export const SearchForm: FC<{ app: AppConfig; query?: string }> = ({ app, query }) => (
	<form method="get" action={`${appPath(app)}/search`} role="search" class="search">
		<label for={`q-${app.id}`}>Search app {app.id} by user id, transaction id, order id or original transaction id</label>
		<div class="row">
			<input id={`q-${app.id}`} name="q" type="search" value={query ?? ""} required autocomplete="off" />
			<button type="submit">Search</button>
		</div>
	</form>
);

const StateBadge: FC<{ entry: Pick<HistoryEntry, "state" | "kind" | "expiresAt" | "graceExpiresAt"> }> = ({ entry }) => {
	const state = currentState(entry);
	const entitled = isEntitled(entry);
	return <span class={`badge ${entitled ? "badge-ok" : "badge-off"}`}>{state}{entitled ? " · access" : ""}</span>;
};

const PurchaseTable: FC<{ app: AppConfig; entries: HistoryEntry[]; caption: string; matched?: string[] }> = ({ app, entries, caption, matched }) => (
	<div class="scroll">
		<table>
			<caption>{caption}</caption>
			<thead>
				<tr>
					<th scope="col">Product</th>
					<th scope="col">State</th>
					<th scope="col">Store</th>
					<th scope="col">Environment</th>
					<th scope="col">Bought</th>
					<th scope="col">Expires</th>
					<th scope="col">Owner</th>
					{matched ? <th scope="col">Matched by</th> : null}
				</tr>
			</thead>
			<tbody>
				{entries.map((e, i) => (
					<tr>
						<th scope="row">
							<a href={purchasePath(app, e.store, e.transactionId)}>{e.productId}</a>
							<div class="muted mono">{e.transactionId.length > 24 ? `${e.transactionId.slice(0, 24)}…` : e.transactionId}</div>
						</th>
						<td>
							<StateBadge entry={e} />
						</td>
						<td>{storeName(e.store)}</td>
						<td>{e.environment}</td>
						<td>{when(e.purchasedAt)}</td>
						<td>{when(e.expiresAt)}</td>
						<td>{e.userId ? <a href={customerPath(app, e.userId)}>{e.userId}</a> : <span class="muted">nobody</span>}</td>
						{matched ? <td>{matched[i]}</td> : null}
					</tr>
				))}
			</tbody>
		</table>
	</div>
);

export const SearchPage: FC<{ user: ConsoleUser; csrf: string; app: AppConfig; result: SearchResult | null }> = ({ user, csrf, app, result }) => (
	<ConsolePage title={result ? `Search: ${result.query}` : `App ${app.id}`} user={user} csrf={csrf} app={app}>
		<SearchForm app={app} query={result?.query} />
		{result ? (
			<section aria-labelledby="results">
				<h2 id="results">Results</h2>
				{result.user ? (
					<p>
						Customer: <a href={customerPath(app, result.user.userId)}>{result.user.userId}</a> ({result.user.more ? "more than 10" : result.user.purchases} purchase
						{result.user.purchases === 1 ? "" : "s"})
					</p>
				) : null}
				{result.purchases.length > 0 ? (
					<PurchaseTable app={app} entries={result.purchases.map((p) => p.entry)} matched={result.purchases.map((p) => p.matched)} caption="Purchases that match" />
				) : null}
				{!result.user && result.purchases.length === 0 ? <p>Nothing in app {app.id} matches “{result.query}”: no user with purchases, no transaction, order or original transaction by that id.</p> : null}
			</section>
		) : null}
	</ConsolePage>
);

export const CustomerPage: FC<{ user: ConsoleUser; csrf: string; app: AppConfig; userId: string; purchases: HistoryEntry[]; next: string | null; entitlements: Entitlement[] }> = (p) => (
	<ConsolePage title={`Customer ${p.userId}`} user={p.user} csrf={p.csrf} app={p.app}>
		{p.entitlements.length > 0 ? (
			<section aria-labelledby="entitlements">
				<h2 id="entitlements">Entitlements</h2>
				<ul class="entitlements">
					{p.entitlements.map((e) => (
						<li>
							<strong>{e.id}</strong>: <span class={`badge ${e.active ? "badge-ok" : "badge-off"}`}>{e.state}</span>
							{e.expiresAt ? ` until ${when(e.expiresAt)}` : ""}
							{e.productId ? <span class="muted"> ({e.productId}, {storeName(e.store ?? "")})</span> : null}
						</li>
					))}
				</ul>
			</section>
		) : null}
		<section aria-labelledby="purchases">
			<h2 id="purchases">Purchases, newest first</h2>
			{p.purchases.length === 0 ? <p>No purchases for this user in app {p.app.id}.</p> : <PurchaseTable app={p.app} entries={p.purchases} caption={`${p.userId}'s purchases`} />}
			{p.next ? (
				<p>
					<a href={`${customerPath(p.app, p.userId)}?cursor=${encodeURIComponent(p.next)}`}>Older purchases</a>
				</p>
			) : null}
		</section>
	</ConsolePage>
);

const Facts: FC<{ rows: [string, Child][] }> = ({ rows }) => (
	<dl class="facts">
		{rows.map(([term, value]) => (
			<>
				<dt>{term}</dt>
				<dd>{value}</dd>
			</>
		))}
	</dl>
);

const ActionForm: FC<{ action: string; title: string; csrf: string; toUser?: boolean; danger?: boolean; explain: string }> = ({ action, title, csrf, toUser, danger, explain }) => {
	const id = action.split("/").pop()!;
	return (
		<form method="post" action={action} class="action stack" aria-labelledby={`${id}-title`}>
			<h3 id={`${id}-title`}>{title}</h3>
			<p class="muted">{explain}</p>
			<Csrf token={csrf} />
			{toUser ? (
				<>
					<label for={`${id}-to`}>New owner (user id)</label>
					<input id={`${id}-to`} name="toUserId" required autocomplete="off" />
				</>
			) : null}
			<label for={`${id}-reason`}>Reason (kept in the audit trail)</label>
			<input id={`${id}-reason`} name="reason" required maxlength={1000} autocomplete="off" />
			<button type="submit" class={danger ? "danger" : undefined}>
				{title}
			</button>
		</form>
	);
};

export const PurchasePage: FC<{ user: ConsoleUser; csrf: string; app: AppConfig; detail: PurchaseDetail; notice?: { kind: "error" | "done"; text: string } | undefined }> = ({ user, csrf, app, detail, notice }) => {
	const p = detail.purchase;
	const base = purchasePath(app, p.store, p.transactionId);
	const timeline = [
		...detail.timeline.map((n) => ({ at: n.signedAt, what: `${n.type}${n.subtype ? ` · ${n.subtype}` : ""}`, kind: "store notification", by: n.source === "catch_up" ? "found by the catch-up" : "pushed by the store" })),
		...detail.events.map((e) => ({ at: e.at, what: e.type, kind: "event", by: e.userId ? `owner ${e.userId}` : "no owner" })),
	].sort((a, b) => a.at - b.at);
	return (
		<ConsolePage title={`${p.productId} · ${storeName(p.store)}`} user={user} csrf={csrf} app={app}>
			{notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : null}
			<section aria-labelledby="summary">
				<h2 id="summary">Purchase</h2>
				<Facts
					rows={[
						["State", <StateBadge entry={p} />],
						["Owner", detail.owner ? <a href={customerPath(app, detail.owner)}>{detail.owner}</a> : <span class="muted">nobody{detail.claim?.revoked ? " (revoked by support)" : ""}</span>],
						["Store", storeName(p.store)],
						["Environment", p.environment],
						["Kind", p.kind],
						["Transaction id", <span class="mono wrap">{p.transactionId}</span>],
						["Original transaction id", p.originalTransactionId ?? "—"],
						["Subscription", p.subscriptionId ? <span class="mono wrap">{p.subscriptionId}</span> : "—"],
						["Order id", p.orderId ?? "—"],
						["Bought", when(p.purchasedAt)],
						["Expires", when(p.expiresAt)],
						["Renews", p.willRenew === null ? "—" : p.willRenew ? "yes" : "no"],
						["Price", p.price !== null && p.currency ? money(p.price, p.currency) : "—"],
						["As the store said at", when(p.asOf)],
					]}
				/>
			</section>
			<section aria-labelledby="claim">
				<h2 id="claim">Claim</h2>
				{detail.claim ? (
					<Facts
						rows={[
							["Claim key", <span class="mono wrap">{detail.claim.key}</span>],
							["First claimed", when(detail.claim.firstSeenAt)],
							["Transactions in it", String(detail.claim.transactions)],
							["Acknowledged (Google)", `${detail.claim.acknowledgement ?? "—"}${detail.claim.acknowledgementAttempts ? ` after ${detail.claim.acknowledgementAttempts} attempt(s)` : ""}`],
							["Consumed", detail.claim.consumption ?? "—"],
							["Retries pending", detail.claim.historySynced === false || detail.claim.acknowledgement === "pending" ? "yes: the claim retries from its alarm" : "none"],
							["Revoked by support", detail.claim.revoked ? "yes" : "no"],
						]}
					/>
				) : (
					<p>No claim holds this purchase yet (a store told us of it before any user presented it).</p>
				)}
			</section>
			<section aria-labelledby="actions">
				<h2 id="actions">Actions</h2>
				<div class="actions">
					<ActionForm action={`${base}/reverify`} title="Re-verify with the store" csrf={csrf} explain="Ask the store about this purchase now and record what it says." />
					<ActionForm action={`${base}/transfer`} title="Transfer" csrf={csrf} toUser explain="Move it (a whole subscription) to another user." />
					<ActionForm action={`${base}/revoke`} title="Revoke" csrf={csrf} danger explain="Take it from everyone until it is transferred to someone." />
				</div>
			</section>
			<section aria-labelledby="timeline">
				<h2 id="timeline">Timeline</h2>
				{timeline.length === 0 ? (
					<p>No store notifications or events yet.</p>
				) : (
					<ol class="timeline">
						{timeline.map((t) => (
							<li>
								<time datetime={new Date(t.at).toISOString()}>{when(t.at)}</time> <strong>{t.what}</strong> <span class="muted">({t.kind}, {t.by})</span>
							</li>
						))}
					</ol>
				)}
			</section>
			<section aria-labelledby="audit">
				<h2 id="audit">Audit trail</h2>
				{detail.audit.length === 0 ? (
					<p>No ownership changes or support actions yet.</p>
				) : (
					<div class="scroll">
						<table>
							<caption>Ownership changes and support actions, oldest first</caption>
							<thead>
								<tr>
									<th scope="col">When</th>
									<th scope="col">Action</th>
									<th scope="col">From</th>
									<th scope="col">To</th>
									<th scope="col">By</th>
									<th scope="col">Reason</th>
									<th scope="col">Outcome</th>
								</tr>
							</thead>
							<tbody>
								{detail.audit.map((a) => (
									<tr>
										<td>{when(a.at)}</td>
										<th scope="row">{a.action}</th>
										<td>{a.fromUserId ?? "—"}</td>
										<td>{a.toUserId ?? "—"}</td>
										<td>{a.actor}</td>
										<td>{a.reason ?? "—"}</td>
										<td>{a.outcome ?? "—"}</td>
									</tr>
								))}
							</tbody>
						</table>
					</div>
				)}
			</section>
			<section aria-labelledby="raw">
				<h2 id="raw">The store's answer</h2>
				<details>
					<summary>As received (Apple: the decoded signed transaction)</summary>
					<pre class="raw">{JSON.stringify(detail.storeAnswer, null, 2)}</pre>
				</details>
			</section>
		</ConsolePage>
	);
};

const METRICS = [
	["newPurchases", "New purchases"],
	["renewals", "Renewals"],
	["refunds", "Refunds"],
	["revocations", "Revocations"],
	["activeSubscriptions", "Active subscriptions"],
] as const;

export const KpiPage: FC<{ user: ConsoleUser; csrf: string; app: AppConfig; report: KpiReport; error?: string | undefined }> = ({ user, csrf, app, report, error }) => {
	const codes = [...new Set(report.days.flatMap((d) => Object.keys(d.refusals)))].sort((a, b) => (a === "owned_by_another_user" ? -1 : b === "owned_by_another_user" ? 1 : a.localeCompare(b)));
	const currencies = [...new Set(report.days.flatMap((d) => [...Object.keys(d.revenue), ...Object.keys(d.refunded)]))].sort();
	const sharing = report.totals.refusals.owned_by_another_user ?? 0;
	return (
		<ConsolePage title={`KPIs · app ${app.id}`} user={user} csrf={csrf} app={app} scripts={["/assets/vendor/uPlot.iife.min.js", "/assets/kpis.js"]} styles={["/assets/vendor/uPlot.min.css"]}>
			{error ? <Notice kind="error">{error}</Notice> : null}
			<form method="get" class="filters" aria-label="Range and filters">
				<label>
					From <input type="date" name="from" value={report.from} required />
				</label>
				<label>
					To <input type="date" name="to" value={report.to} required />
				</label>
				<label>
					Environment{" "}
					<select name="environment">
						{(["Production", "Sandbox"] as const).map((e) => (
							<option value={e} selected={report.environment === e}>
								{e}
							</option>
						))}
					</select>
				</label>
				<label>
					Store{" "}
					<select name="store">
						<option value="" selected={report.store === null}>
							Every store
						</option>
						{STORES.map((s) => (
							<option value={s} selected={report.store === s}>
								{storeName(s)}
							</option>
						))}
					</select>
				</label>
				<button type="submit">Show</button>
			</form>
			<ul class="totals" aria-label="Totals over the range">
				<li>
					<span class="n">{report.totals.newPurchases}</span> new purchases
				</li>
				<li>
					<span class="n">{report.totals.renewals}</span> renewals
				</li>
				<li>
					<span class="n">{report.totals.refunds}</span> refunds
				</li>
				<li>
					<span class="n">{report.totals.revocations}</span> revocations
				</li>
				<li>
					<span class="n">{report.days.at(-1)?.activeSubscriptions ?? 0}</span> active subscriptions
				</li>
				<li class={sharing > 0 ? "alarm" : undefined}>
					<span class="n">{sharing}</span> sharing attempts
				</li>
				{Object.entries(report.totals.revenue).map(([currency, amount]) => (
					<li>
						<span class="n">{money(amount, currency)}</span> revenue
					</li>
				))}
			</ul>
			<section aria-labelledby="charts">
				<h2 id="charts">Charts</h2>
				<p class="muted">The same numbers as the table below. Sharing attempts (refusals: owned_by_another_user) are drawn in red.</p>
				<div class="charts">
					<figure>
						<figcaption id="chart-activity">Purchases, renewals, refunds and revocations per day</figcaption>
						<div class="chart" data-chart="activity" role="img" aria-labelledby="chart-activity"></div>
					</figure>
					<figure>
						<figcaption id="chart-active">Active subscriptions at the end of each day</figcaption>
						<div class="chart" data-chart="active" role="img" aria-labelledby="chart-active"></div>
					</figure>
					<figure>
						<figcaption id="chart-refusals">Refusals per day, by code</figcaption>
						<div class="chart" data-chart="refusals" role="img" aria-labelledby="chart-refusals"></div>
					</figure>
				</div>
				<div id="kpi-data" hidden data-kpi={JSON.stringify({ days: report.days, codes, currencies })}></div>
			</section>
			<section aria-labelledby="table">
				<h2 id="table">By day</h2>
				<div class="scroll">
					<table class="numbers">
						<caption>
							App {app.id}, {report.environment}, {report.store ? storeName(report.store) : "every store"}, {report.from} to {report.to} (UTC days)
						</caption>
						<thead>
							<tr>
								<th scope="col">Day</th>
								{METRICS.map(([, label]) => (
									<th scope="col">{label}</th>
								))}
								{codes.map((code) => (
									<th scope="col" class={code === "owned_by_another_user" ? "alarm" : undefined}>
										Refused: {code === "owned_by_another_user" ? "sharing (owned_by_another_user)" : code}
									</th>
								))}
								{currencies.map((c) => (
									<th scope="col">Revenue {c}</th>
								))}
							</tr>
						</thead>
						<tbody>
							{report.days.map((d) => (
								<tr>
									<th scope="row">{d.day}</th>
									{METRICS.map(([key]) => (
										<td>{d[key]}</td>
									))}
									{codes.map((code) => (
										<td class={code === "owned_by_another_user" && (d.refusals[code] ?? 0) > 0 ? "alarm" : undefined}>{d.refusals[code] ?? 0}</td>
									))}
									{currencies.map((c) => (
										<td>{d.revenue[c] ? money(d.revenue[c]!, c) : "—"}</td>
									))}
								</tr>
							))}
						</tbody>
					</table>
				</div>
			</section>
		</ConsolePage>
	);
};

export const ErrorPage: FC<{ title: string; message: string }> = ({ title, message }) => (
	<Layout title={`${title} · iap-edge console`}>
		<main id="main" tabindex={-1} class="narrow">
			<h1>{title}</h1>
			<p>{message}</p>
			<p>
				<a href="/console">Back to the console</a>
			</p>
		</main>
	</Layout>
);
