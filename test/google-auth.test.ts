import { env } from "cloudflare:workers";
import { SignJWT, importPKCS8 } from "jose";
import { describe, expect, it } from "vitest";
import { TEST_APPS, SAMPLE_APP } from "./support/fixtures.ts";
import { bearer, call, emulator, json, uniqueUser } from "./support/service.ts";
import { generateRsaKeyPair } from "./support/keys.ts";
import { loadConfig, findApp } from "../src/config/load";
import { Misconfigured } from "../src/answers";
import { verifyGooglePurchase } from "../src/google/verify";

/** Service-account tokens: minted once, shared, refreshed when Google stops accepting them; and the emulator checks them as Google does. */

describe("the access token of a service account", () => {
	it("is fetched once for 50 concurrent verifications", async () => {
		const purchases = await Promise.all(
			Array.from({ length: 50 }, () => emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.tokenCache.packageName })),
		);
		const answers = await Promise.all(
			purchases.map(async (purchase) => {
				const response = await call(
					"POST",
					"/v1/purchases/validate",
					{ store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken },
					bearer(TEST_APPS.tokenCache.apiKey),
				);
				return (await json(response)).success as boolean;
			}),
		);
		expect(answers.every(Boolean)).toBe(true);
		expect(await emulator.calls(TEST_APPS.tokenCache.clientEmail, "google.token")).toBe(1);
		expect(await emulator.calls(TEST_APPS.tokenCache.packageName, "google.products.get")).toBe(50);
	});

	it("is replaced once when Google stops accepting it", async () => {
		const before = await emulator.calls(SAMPLE_APP.clientEmail, "google.token");
		const first = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await call("POST", "/v1/purchases/validate", { store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: first.purchaseToken }, bearer());
		await emulator.expireGoogleTokens();
		const second = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const response = await call("POST", "/v1/purchases/validate", { store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: second.purchaseToken }, bearer());
		expect((await json(response)).success).toBe(true);
		// The rejected call, then the retry with a fresh token.
		expect(await emulator.calls(second.purchaseToken, "google.products.get")).toBe(2);
		expect(await emulator.calls(SAMPLE_APP.clientEmail, "google.token")).toBeGreaterThan(before);
	});

	it("is not fetched again while a token endpoint outage lasts longer than the request", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		await emulator.expireGoogleTokens();
		await emulator.fault({ match: SAMPLE_APP.clientEmail, mode: "error", status: 500, times: 1 });
		// The API refuses the expired token, the refresh fails: the app is told to retry, not "no".
		const response = await call("POST", "/v1/purchases/validate", { store: "google_play", userId: uniqueUser(), productId: "premium_lifetime", purchaseToken: purchase.purchaseToken }, bearer());
		expect(response.status).toBe(503);
		const body = await json(response);
		expect(body.purchase_provider_reachable).toBe(false);
		// An outage is called one, with Google's status, not "[object Object]".
		expect(body.error).toMatchObject({ code: "store_unreachable", message: expect.stringContaining("token endpoint answered 500") });
	});

	it("names Google's OAuth error when the token endpoint refuses the service account, as a misconfiguration", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const loaded = loadConfig(env);
		if (!loaded.ok) throw loaded.error;
		const app = findApp(loaded.config, SAMPLE_APP.id)!;
		// The right account, signed with a key Google does not hold for it (a rotated or mistyped key).
		const stranger = await generateRsaKeyPair();
		const google = { ...app.google!, serviceAccount: { ...app.google!.serviceAccount, private_key: stranger.privateKeyPem, client_email: SAMPLE_APP.clientEmail } };
		const err = await verifyGooglePurchase({ ...app, google }, loaded.config, { store: "google_play", productId: "premium_lifetime", purchaseToken: purchase.purchaseToken }).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(Misconfigured);
		expect((err as Error).message).toContain("invalid_grant: Invalid JWT Signature.");
		expect((err as Error).message).toContain(SAMPLE_APP.clientEmail);
		expect((err as Error).message).not.toContain("PRIVATE KEY");
	});
});

describe("the emulator's token endpoint", () => {
	const tokenUri = `${env.TEST_EMULATOR_URL}/google/token`;
	const scope = "https://www.googleapis.com/auth/androidpublisher";

	async function sampleKey() {
		const loaded = loadConfig(env);
		if (!loaded.ok) throw loaded.error;
		return importPKCS8(findApp(loaded.config, SAMPLE_APP.id)!.google!.serviceAccount.private_key, "RS256");
	}

	async function exchange(assertion: string) {
		const response = await fetch(tokenUri, {
			method: "POST",
			headers: { "content-type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
		});
		return { status: response.status, body: await json(response) };
	}

	function assertion(claims: Record<string, unknown> = {}, lifetime = 3600) {
		const now = Math.floor(Date.now() / 1000);
		return new SignJWT({ scope, ...claims }).setProtectedHeader({ alg: "RS256", typ: "JWT" }).setIssuer(SAMPLE_APP.clientEmail).setAudience(tokenUri).setIssuedAt(now).setExpirationTime(now + lifetime);
	}

	it("issues a bearer token for a well-formed assertion", async () => {
		const { status, body } = await exchange(await assertion().sign(await sampleKey()));
		expect(status).toBe(200);
		expect(body).toMatchObject({ access_token: expect.any(String), expires_in: expect.any(Number), token_type: "Bearer" });
	});

	it("refuses an assertion signed by another key", async () => {
		const other = await importPKCS8((await generateRsaKeyPair()).privateKeyPem, "RS256");
		expect(await exchange(await assertion().sign(other))).toMatchObject({ status: 400, body: { error: "invalid_grant", error_description: "Invalid JWT Signature." } });
	});

	it("refuses an assertion for another audience", async () => {
		expect((await exchange(await assertion().setAudience("https://oauth2.googleapis.com/other").sign(await sampleKey()))).body.error).toBe("invalid_grant");
	});

	it("refuses an assertion that lives longer than an hour", async () => {
		expect((await exchange(await assertion({}, 7200).sign(await sampleKey()))).body.error).toBe("invalid_grant");
	});

	it("refuses an assertion without the androidpublisher scope", async () => {
		expect((await exchange(await assertion({ scope: "https://www.googleapis.com/auth/cloud-platform" }).sign(await sampleKey()))).body.error).toBe("invalid_scope");
	});

	it("refuses an unknown service account", async () => {
		expect((await exchange(await assertion().setIssuer("stranger@example.iam.gserviceaccount.com").sign(await sampleKey()))).status).toBe(400);
	});

	it("is required by the API: no token or an unknown one answers 401", async () => {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime" });
		const url = `${env.TEST_EMULATOR_URL}/google/androidpublisher/v3/applications/${SAMPLE_APP.packageName}/purchases/products/premium_lifetime/tokens/${purchase.purchaseToken}`;
		expect((await fetch(url)).status).toBe(401);
		const response = await fetch(url, { headers: { authorization: "Bearer ya29.made-up" } });
		expect(response.status).toBe(401);
		expect((await json(response)).error.status).toBe("UNAUTHENTICATED");
	});
});
