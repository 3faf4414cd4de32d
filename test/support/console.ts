/**
 * A browser's side of the console, in a test: cookies kept between requests (session and CSRF), forms posted as a
 * browser posts them (urlencoded, with the page's CSRF token and Origin), redirects not followed (so a test sees them).
 */
import { exports } from "cloudflare:workers";
import { BASE } from "./service.ts";

export class ConsoleBrowser {
	readonly cookies = new Map<string, string>();
	/** Headers every request carries, e.g. Cloudflare Access's assertion. */
	constructor(readonly headers: Record<string, string> = {}) {}

	async get(path: string): Promise<Response> {
		return this.#send(new Request(`${BASE}${path}`, { headers: this.#headers(), redirect: "manual" }));
	}

	/** Posts a form; `csrf: false` leaves the token out, as a forged cross-site form would. */
	async post(path: string, fields: Record<string, string>, options: { csrf?: boolean | string; origin?: string } = {}): Promise<Response> {
		const body = new URLSearchParams(fields);
		const token = options.csrf === false ? undefined : typeof options.csrf === "string" ? options.csrf : this.cookies.get("iap_csrf");
		if (token !== undefined) body.set("_csrf", token);
		const headers = { ...this.#headers(), "content-type": "application/x-www-form-urlencoded", origin: options.origin ?? BASE };
		return this.#send(new Request(`${BASE}${path}`, { method: "POST", headers, body, redirect: "manual" }));
	}

	/** Signs in with a console key (reading the sign-in page first, for its CSRF cookie). */
	async signIn(key: string): Promise<Response> {
		await this.get("/console/sign-in");
		return this.post("/console/sign-in", { key, next: "/console" });
	}

	#headers(): Record<string, string> {
		const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
		return { "cf-connecting-ip": `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`, ...this.headers, ...(cookie ? { cookie } : {}) };
	}

	async #send(request: Request): Promise<Response> {
		const response = await exports.default.fetch(request);
		for (const line of response.headers.getSetCookie()) {
			const [pair] = line.split(";");
			const [name, ...value] = pair!.split("=");
			if (/max-age=0/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name!.trim());
			else this.cookies.set(name!.trim(), value.join("="));
		}
		return response;
	}
}

/** The text of a page, without tags: what a screen reader would read, roughly. */
export async function textOf(response: Response): Promise<string> {
	return (await response.text()).replace(/<[^>]+>/g, " ").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&").replace(/\s+/g, " ");
}
