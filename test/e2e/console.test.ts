import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SAMPLE_APP, SAMPLE_CONSOLE } from "../support/fixtures.ts";

/**
 * The console in a real browser: Debian's Chromium driven by playwright-core (no browser download), against
 * `npm run dev` on ports of its own. Screenshots go to .tmp/screenshots/ (git-ignored), for a person to look at.
 * CHROMIUM_PATH names another Chromium or Chrome.
 */

const SCREENSHOTS = ".tmp/screenshots";

function chromiumPath(): string {
	const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].filter((p): p is string => Boolean(p));
	for (const path of candidates) if (existsSync(path)) return path;
	try {
		return execFileSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { encoding: "utf8" }).trim();
	} catch {
		throw new Error("no Chromium found: install Debian's (`sudo apt-get install -y chromium`), or set CHROMIUM_PATH to a Chromium or Chrome");
	}
}

let browser: Browser;
const service = () => inject("service");
const emulator = () => inject("emulator");

async function post<T>(url: string, body: unknown): Promise<T> {
	const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
	if (response.status >= 300) throw new Error(`${url}: ${response.status} ${await response.text()}`);
	return (await response.json()) as T;
}

/** A user buys premium_monthly on Google Play (the emulator) and the app verifies it with the service. */
async function purchaseFor(userId: string): Promise<{ purchaseToken: string; orderId: string }> {
	const purchase = await post<{ purchaseToken: string; orderId: string; localVerificationData: string }>(`${emulator()}/_emulator/google/purchases`, {
		packageName: SAMPLE_APP.packageName,
		productId: "premium_monthly",
		type: "subscription",
	});
	const verified = await post<{ complete_purchase: boolean }>(`${service()}/verify`, {
		userIdentifier: userId,
		appId: Number(SAMPLE_APP.id),
		purchaseDetails: {
			verificationData: { serverVerificationData: purchase.purchaseToken, localVerificationData: purchase.localVerificationData, source: "google_play" },
			productID: "premium_monthly",
			purchaseID: purchase.orderId,
			status: "purchased",
		},
	});
	expect(verified.complete_purchase).toBe(true);
	return purchase;
}

async function signIn(page: Page, key: string = SAMPLE_CONSOLE.key): Promise<void> {
	await page.goto(`${service()}/console`);
	await expect.poll(() => new URL(page.url()).pathname).toBe("/console/sign-in");
	await page.getByLabel("Console key").fill(key);
	await page.getByRole("button", { name: "Sign in" }).click();
}

/** What a keyboard or screen-reader user needs on any page: one h1, a main landmark, every field labelled. */
async function expectAccessible(page: Page): Promise<void> {
	expect(await page.locator("h1").count()).toBe(1);
	expect(await page.locator("main").count()).toBe(1);
	const unlabelled = await page.evaluate(() =>
		[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
			.filter((el) => {
				const field = el as HTMLInputElement;
				const named = field.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent?.trim());
				return !named;
			})
			.map((el) => el.outerHTML.slice(0, 80)),
	);
	expect(unlabelled).toEqual([]);
	// The first Tab reaches the skip link, and it leads to the page's main content.
	await page.keyboard.press("Tab");
	expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe("Skip to content");
	await page.keyboard.press("Enter");
	expect(await page.evaluate(() => location.hash)).toBe("#main");
	await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
}

beforeAll(async () => {
	mkdirSync(SCREENSHOTS, { recursive: true });
	browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] });
});

afterAll(async () => {
	await browser?.close();
});

describe("the console in Chromium", () => {
	it("refuses a wrong console key", async () => {
		const page = await browser.newPage();
		await signIn(page, "a-wrong-console-key-0000000000000");
		await expect.poll(() => page.getByRole("alert").textContent()).toContain("That console key is not valid.");
		expect(new URL(page.url()).pathname).toBe("/console/sign-in");
		await expectAccessible(page);
		await page.screenshot({ path: `${SCREENSHOTS}/sign-in-refused.png`, fullPage: true });
		await page.close();
	});

	it("signs in with the console key, finds the user the emulator sold to, and opens the purchase", async () => {
		const userId = `browser-${Date.now()}`;
		const purchase = await purchaseFor(userId);
		const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
		await signIn(page);
		await expect.poll(() => new URL(page.url()).pathname).toBe("/console");
		await page.screenshot({ path: `${SCREENSHOTS}/home.png`, fullPage: true });

		await page.getByLabel(`Search app ${SAMPLE_APP.id} by user id, transaction id, order id or original transaction id`).fill(userId);
		await page.keyboard.press("Enter");
		await page.getByRole("link", { name: userId }).first().click();
		await expect.poll(() => page.locator("h1").textContent()).toBe(`Customer ${userId}`);
		await expect.poll(() => page.getByRole("table").textContent()).toContain("premium_monthly");
		await expectAccessible(page);
		await page.screenshot({ path: `${SCREENSHOTS}/customer.png`, fullPage: true });

		await page.getByRole("link", { name: "premium_monthly" }).click();
		await expect.poll(() => page.locator("h1").textContent()).toBe("premium_monthly · Google Play");
		const summary = page.locator("section", { has: page.locator("#summary") });
		expect(await summary.textContent()).toContain("active · access");
		expect(await summary.textContent()).toContain(userId);
		expect(await page.textContent("body")).toContain(purchase.orderId);
		await expectAccessible(page);
		await page.screenshot({ path: `${SCREENSHOTS}/purchase.png`, fullPage: true });

		// An action posted without the page's CSRF token (as another site's form would post it) is refused, and changes nothing.
		const forged = await page.request.post(`${page.url()}/revoke`, { form: { reason: "forged" }, maxRedirects: 0 });
		expect(forged.status()).toBe(403);
		await page.reload();
		expect(await summary.textContent()).toContain(userId);

		// The same action from the page itself, with a reason: done, and in the audit trail.
		await page.getByLabel("Reason (kept in the audit trail)").nth(0).fill("customer asked to check with Google");
		await page.getByRole("button", { name: "Re-verify with the store" }).click();
		await expect.poll(() => page.getByRole("status").textContent()).toContain("Re-verified: the store still says active.");
		expect(await page.locator("section", { has: page.locator("#audit") }).textContent()).toContain("console:support");
		await page.close();
	});

	it("draws the KPI charts with data, and shows the same numbers as a table", async () => {
		await purchaseFor(`kpi-${Date.now()}`);
		const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
		await signIn(page);
		const today = new Date().toISOString().slice(0, 10);
		// Events reach the counts through the queue: allow it a moment.
		await expect
			.poll(
				async () => {
					await page.goto(`${service()}/console/apps/${SAMPLE_APP.id}/kpis`);
					return Number(await page.locator(`table.numbers tr:has(th:text("${today}")) td`).first().textContent());
				},
				{ timeout: 20_000 },
			)
			.toBeGreaterThan(0);
		await page.waitForSelector('[data-chart="activity"][data-drawn] canvas');
		const canvas = await page.locator('[data-chart="activity"] canvas').boundingBox();
		expect(canvas!.width).toBeGreaterThan(200);
		expect(canvas!.height).toBeGreaterThan(100);
		// Something is drawn: the canvas is not blank.
		const inked = await page.evaluate(() => {
			const c = document.querySelector('[data-chart="activity"] canvas') as HTMLCanvasElement;
			const pixels = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
			let n = 0;
			for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) n++;
			return n;
		});
		expect(inked).toBeGreaterThan(500);
		await expectAccessible(page);
		await page.screenshot({ path: `${SCREENSHOTS}/kpis.png`, fullPage: true });
		await page.close();
	});

	it("fits a phone: no page scrolls sideways, and the actions stay reachable", async () => {
		const userId = `phone-${Date.now()}`;
		const purchase = await purchaseFor(userId);
		const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
		await signIn(page);
		for (const [name, path] of [
			["phone-home", "/console"],
			["phone-customer", `/console/apps/${SAMPLE_APP.id}/users/${userId}`],
			["phone-purchase", `/console/apps/${SAMPLE_APP.id}/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`],
			["phone-kpis", `/console/apps/${SAMPLE_APP.id}/kpis`],
		] as const) {
			await page.goto(`${service()}${path}`);
			const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
			expect(overflow, name).toBeLessThanOrEqual(1);
			await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
		}
		await page.goto(`${service()}/console/apps/${SAMPLE_APP.id}/purchases/google_play/${encodeURIComponent(purchase.purchaseToken)}`);
		await page.getByRole("button", { name: "Revoke" }).scrollIntoViewIfNeeded();
		expect(await page.getByRole("button", { name: "Revoke" }).isVisible()).toBe(true);
		await page.close();
	});
});

describe("the API reference in Chromium", () => {
	it("lists every operation and sends a request from its form", async () => {
		const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
		await page.goto(`${service()}/docs`);
		await page.locator("#try-api-key").fill("sample-api-key-0123456789abcdef");
		const form = page.locator('form.try[data-path="/v1/users/{userId}/purchases"]');
		await form.locator('input[name="userId"]').fill("nobody-yet");
		await form.getByRole("button", { name: "Send" }).click();
		await expect.poll(() => form.locator("output").textContent()).toContain('"user_id": "nobody-yet"');
		expect(await form.locator("output").textContent()).toMatch(/^200/);
		await page.screenshot({ path: `${SCREENSHOTS}/docs.png` });
		await page.close();
	});
});
