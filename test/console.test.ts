import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SAMPLE_APP, SAMPLE_CONSOLE, TEST_APPS, TEST_CONSOLE } from "./support/fixtures.ts";
import { ConsoleBrowser, textOf } from "./support/console.ts";
import { bearer, call, emulator, eventually, googleVerifyBody, json, uniqueUser } from "./support/service.ts";

/** The support console (/console): signing in, finding a customer, looking at a purchase, acting on it. */

async function accessToken(body: Record<string, unknown>): Promise<string> {
	const response = await fetch(`${env.TEST_EMULATOR_URL}/_emulator/access/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
	return (await json<{ token: string }>(response)).token;
}

async function boughtAndVerified(userId: string, productId = "premium_monthly") {
	const purchase = await emulator.createGooglePurchase({ productId, type: productId === "premium_monthly" ? "subscription" : "product" });
	const verified = await json(await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: userId })));
	expect(verified).toEqual({ complete_purchase: true });
	return purchase;
}

async function signedIn(key: string = SAMPLE_CONSOLE.key): Promise<ConsoleBrowser> {
	const browser = new ConsoleBrowser();
	const response = await browser.signIn(key);
	expect(response.status).toBe(303);
	return browser;
}

describe("signing in with a console key", () => {
	it("sends a visitor without a session to the sign-in form", async () => {
		const response = await new ConsoleBrowser().get("/console/apps/1234/kpis");
		expect(response.status).toBe(303);
		expect(response.headers.get("location")).toBe("/console/sign-in?next=%2Fconsole%2Fapps%2F1234%2Fkpis");
	});

	it("gives a session cookie that scripts cannot read and other sites never send", async () => {
		const browser = new ConsoleBrowser();
		await browser.get("/console/sign-in");
		const response = await browser.post("/console/sign-in", { key: SAMPLE_CONSOLE.key, next: "/console/apps/1234" });
		expect(response.status).toBe(303);
		expect(response.headers.get("location")).toBe("/console/apps/1234");
		const cookie = response.headers.getSetCookie().find((c) => c.startsWith("iap_console="))!;
		expect(cookie).toMatch(/HttpOnly/);
		expect(cookie).toMatch(/SameSite=Strict/);
		expect(cookie).toMatch(/Secure/);
		expect(cookie).toMatch(/Path=\/console/);
		expect(cookie).not.toContain(SAMPLE_CONSOLE.key);
		const home = await browser.get("/console");
		expect(home.status).toBe(200);
		expect(await textOf(home)).toContain("App 1234");
	});

	it("refuses a wrong key with the form again, and no session", async () => {
		const browser = new ConsoleBrowser();
		await browser.get("/console/sign-in");
		const response = await browser.post("/console/sign-in", { key: "not-the-console-key-000000000000" });
		expect(response.status).toBe(401);
		expect(await textOf(response)).toContain("That console key is not valid.");
		expect(browser.cookies.has("iap_console")).toBe(false);
		expect((await browser.get("/console")).status).toBe(303);
	});

	it("refuses an API key: console keys are keys of their own", async () => {
		const browser = new ConsoleBrowser();
		await browser.get("/console/sign-in");
		expect((await browser.post("/console/sign-in", { key: SAMPLE_APP.apiKey })).status).toBe(401);
	});

	it("refuses a sign-in without the form's CSRF token", async () => {
		const browser = new ConsoleBrowser();
		await browser.get("/console/sign-in");
		expect((await browser.post("/console/sign-in", { key: SAMPLE_CONSOLE.key }, { csrf: false })).status).toBe(403);
		expect(browser.cookies.has("iap_console")).toBe(false);
	});

	it("ignores a forged session cookie", async () => {
		const browser = new ConsoleBrowser();
		browser.cookies.set("iap_console", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdXBwb3J0In0.c2lnbmF0dXJl");
		expect((await browser.get("/console")).status).toBe(303);
	});

	it("ends the session at sign-out", async () => {
		const browser = await signedIn();
		const response = await browser.post("/console/sign-out", {});
		expect(response.status).toBe(303);
		expect(browser.cookies.has("iap_console")).toBe(false);
		expect((await browser.get("/console")).status).toBe(303);
	});
});

describe("Cloudflare Access in front of the console", () => {
	it("lets in a user Access vouches for, named by e-mail", async () => {
		const browser = new ConsoleBrowser({ "cf-access-jwt-assertion": await accessToken({ email: "alice@example.com" }) });
		const response = await browser.get("/console");
		expect(response.status).toBe(200);
		expect(await textOf(response)).toContain("alice@example.com");
	});

	it("refuses a token for another Access application, one expired, and an e-mail not listed", async () => {
		for (const body of [{ email: "alice@example.com", audience: "another-application" }, { email: "alice@example.com", expiresInSeconds: -600 }, { email: "mallory@elsewhere.test" }]) {
			const response = await new ConsoleBrowser({ "cf-access-jwt-assertion": await accessToken(body) }).get("/console");
			expect(response.status).toBe(403);
		}
	});

	it("refuses a token signed by anyone but the team", async () => {
		const token = await accessToken({ email: "alice@example.com" });
		const [header, payload] = token.split(".");
		const forged = `${header}.${payload}.${btoa("not a signature").replaceAll("=", "")}`;
		expect((await new ConsoleBrowser({ "cf-access-jwt-assertion": forged }).get("/console")).status).toBe(403);
	});
});

describe("finding a customer", () => {
	it("by user id: the customer's page, entitlements and purchases newest first", async () => {
		const userId = uniqueUser("console");
		const older = await boughtAndVerified(userId, "premium_lifetime");
		const newer = await boughtAndVerified(userId, "premium_monthly");
		const browser = await signedIn();
		const results = await browser.get(`/console/apps/1234/search?q=${encodeURIComponent(userId)}`);
		expect(results.status).toBe(200);
		expect(await textOf(results)).toContain(`Customer: ${userId}`);
		const page = await browser.get(`/console/apps/1234/users/${encodeURIComponent(userId)}`);
		const html = await page.text();
		expect(html).toContain("<h2 id=\"entitlements\">Entitlements</h2>");
		expect(html.indexOf(encodeURIComponent(newer.purchaseToken))).toBeLessThan(html.indexOf(encodeURIComponent(older.purchaseToken)));
		expect(html.indexOf(encodeURIComponent(older.purchaseToken))).toBeGreaterThan(0);
	});

	it("by order id or purchase token: straight to the purchase", async () => {
		const purchase = await boughtAndVerified(uniqueUser("console"));
		const browser = await signedIn();
		for (const q of [purchase.orderId, purchase.purchaseToken]) {
			const response = await browser.get(`/console/apps/1234/search?q=${encodeURIComponent(q)}`);
			expect(response.status).toBe(303);
			expect(response.headers.get("location")).toBe(`/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`);
		}
	});

	it("says when nothing matches", async () => {
		const browser = await signedIn();
		expect(await textOf(await browser.get("/console/apps/1234/search?q=nobody-at-all"))).toContain("Nothing in app 1234 matches");
	});

	it("shows a user only the apps they are allowed", async () => {
		const browser = await signedIn(TEST_CONSOLE.key);
		expect(await textOf(await browser.get("/console"))).not.toContain(`App ${TEST_APPS.events.id}`);
		const other = await browser.get(`/console/apps/${TEST_APPS.events.id}/kpis`);
		expect(other.status).toBe(404);
		expect((await browser.get("/console/apps/1234/kpis")).status).toBe(200);
	});
});

describe("a purchase's page", () => {
	it("shows its owner, state, claim, timeline and the store's answer", async () => {
		const userId = uniqueUser("console");
		const purchase = await boughtAndVerified(userId);
		const browser = await signedIn();
		const page = await browser.get(`/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`);
		expect(page.status).toBe(200);
		expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
		expect(page.headers.get("cache-control")).toBe("no-store");
		const text = await textOf(page);
		expect(text).toContain(`Owner ${userId}`);
		expect(text).toContain("active · access");
		expect(text).toContain("Acknowledged (Google)");
		expect(text).toContain("androidpublisher#subscriptionPurchaseV2");
		await eventually(async () => (await textOf(await browser.get(`/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`))).includes("purchase.granted"));
	});

	it("transfers it with a reason, and the audit trail names the console user", async () => {
		const purchase = await boughtAndVerified(uniqueUser("console"));
		const to = uniqueUser("new-owner");
		const browser = await signedIn();
		const path = `/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`;
		const response = await browser.post(`${path}/transfer`, { toUserId: to, reason: "ticket 1: new account" });
		expect(response.status).toBe(303);
		const page = await textOf(await browser.get(response.headers.get("location")!));
		expect(page).toContain(`Transferred from`);
		expect(page).toContain(`Owner ${to}`);
		expect(page).toMatch(/transfer .* console:support ticket 1: new account/);
		const api = await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer()));
		expect(api.owner).toBe(to);
		expect(api.audit.at(-1)).toMatchObject({ action: "transfer", actor: "console:support", reason: "ticket 1: new account", toUserId: to });
	});

	it("asks for a reason before it acts", async () => {
		const userId = uniqueUser("console");
		const purchase = await boughtAndVerified(userId);
		const browser = await signedIn();
		const response = await browser.post(`/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}/revoke`, { reason: "  " });
		expect(response.status).toBe(400);
		expect(await textOf(response)).toContain("say why: it is kept in the audit trail");
		expect((await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer()))).owner).toBe(userId);
	});

	it("refuses an action without the CSRF token, or from another site, and changes nothing", async () => {
		const userId = uniqueUser("console");
		const purchase = await boughtAndVerified(userId);
		const browser = await signedIn();
		const path = `/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}/revoke`;
		expect((await browser.post(path, { reason: "forged" }, { csrf: false })).status).toBe(403);
		expect((await browser.post(path, { reason: "forged" }, { csrf: "A".repeat(43) })).status).toBe(403);
		expect((await browser.post(path, { reason: "forged" }, { origin: "https://evil.test" })).status).toBe(403);
		expect((await json(await call("GET", `/v1/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`, undefined, bearer()))).owner).toBe(userId);
	});

	it("re-verifies with the store: a lapse Google never notified shows at once, audited", async () => {
		const purchase = await boughtAndVerified(uniqueUser("console"));
		await emulator.updateGooglePurchase(purchase.purchaseToken, { state: "expired", expiresInSeconds: -60, notify: false });
		const browser = await signedIn();
		const path = `/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`;
		const response = await browser.post(`${path}/reverify`, { reason: "customer says it lapsed" });
		expect(response.status).toBe(303);
		const page = await textOf(await browser.get(response.headers.get("location")!));
		expect(page).toContain("Re-verified: the store says expired (was active).");
		expect(page).toMatch(/reverify .* console:support customer says it lapsed applied/);
	});

	it("is not found for a purchase of an app the user may not see", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.events.packageName });
		await call("POST", "/verify", googleVerifyBody(purchase, { userIdentifier: uniqueUser(), appId: TEST_APPS.events.id }));
		const browser = await signedIn(TEST_CONSOLE.key);
		expect((await browser.get(`/console/apps/${TEST_APPS.events.id}/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`)).status).toBe(404);
		expect((await browser.get(`/console/apps/1234/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`)).status).toBe(404);
	});
});

describe("the KPI page", () => {
	it("shows the numbers as a table, with the data the charts draw", async () => {
		const browser = await signedIn();
		const response = await browser.get("/console/apps/1234/kpis");
		expect(response.status).toBe(200);
		const html = await response.text();
		expect(html).toContain('data-chart="activity"');
		expect(html).toContain('src="/assets/vendor/uPlot.iife.min.js"');
		expect(html).toContain("<caption>");
		expect(html).toMatch(/data-kpi="\{&quot;days&quot;:\[/);
	});

	it("says what is wrong with a range it cannot show", async () => {
		const browser = await signedIn();
		const response = await browser.get("/console/apps/1234/kpis?from=2026-05-01&to=2026-04-01");
		expect(response.status).toBe(400);
		expect(await textOf(response)).toContain("from: must not be after `to`");
	});
});
