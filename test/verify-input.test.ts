import { describe, expect, it } from "vitest";
import { TEST_APPS } from "./support/fixtures.ts";
import { call, emulator, googleVerifyBody, json } from "./support/service.ts";
import { MAX_BODY_BYTES } from "../src/http/app";

/** Malformed requests get a 400 naming the field; never a 500, never a grant. */

const valid = () => ({
	userIdentifier: "user123",
	appId: 1234,
	purchaseDetails: {
		verificationData: { serverVerificationData: "token", localVerificationData: "{}", source: "google_play" },
		productID: "premium_monthly",
		purchaseID: "GPA.1234-1234-1234-12345",
		status: "purchased",
		transactionDate: "1643389081662",
	},
});

type Mutation = (body: any) => void;
const cases: [string, Mutation][] = [
	["userIdentifier", (b) => delete b.userIdentifier],
	["userIdentifier", (b) => (b.userIdentifier = "")],
	["userIdentifier", (b) => (b.userIdentifier = 42)],
	["appId", (b) => delete b.appId],
	["appId", (b) => (b.appId = { id: 1 })],
	["appId", (b) => (b.appId = 999999)],
	["purchaseDetails", (b) => delete b.purchaseDetails],
	["purchaseDetails.verificationData", (b) => delete b.purchaseDetails.verificationData],
	["purchaseDetails.verificationData.serverVerificationData", (b) => (b.purchaseDetails.verificationData.serverVerificationData = "")],
	["purchaseDetails.verificationData.serverVerificationData", (b) => delete b.purchaseDetails.verificationData.serverVerificationData],
	["purchaseDetails.verificationData.localVerificationData", (b) => delete b.purchaseDetails.verificationData.localVerificationData],
	["purchaseDetails.verificationData.localVerificationData", (b) => (b.purchaseDetails.verificationData.localVerificationData = "not json")],
	["purchaseDetails.verificationData.localVerificationData.productId", (b) => (b.purchaseDetails.verificationData.localVerificationData = '{"productId": 7}')],
	["purchaseDetails.verificationData.source", (b) => (b.purchaseDetails.verificationData.source = "amazon_appstore")],
	["purchaseDetails.verificationData.source", (b) => delete b.purchaseDetails.verificationData.source],
	["purchaseDetails.productID", (b) => delete b.purchaseDetails.productID],
	["purchaseDetails.productID", (b) => (b.purchaseDetails.productID = "")],
	["purchaseDetails.status", (b) => (b.purchaseDetails.status = "pending")],
	["purchaseDetails.status", (b) => delete b.purchaseDetails.status],
	["purchaseDetails.purchaseID", (b) => (b.purchaseDetails.purchaseID = 12)],
	["purchaseDetails.transactionDate", (b) => (b.purchaseDetails.transactionDate = 1643389081662)],
];

describe("POST /verify with a malformed body", () => {
	it.each(cases)("answers 400 naming %s", async (field, mutate) => {
		const body = valid();
		mutate(body);
		const response = await call("POST", "/verify", body);
		expect(response.status).toBe(400);
		const answer = await json(response);
		expect(answer.error.code).toBe("invalid_request");
		expect(answer.error.field).toBe(field);
		expect(answer.error.message).toContain(field);
		expect(answer).not.toHaveProperty("complete_purchase");
		expect(JSON.stringify(answer)).not.toMatch(/at .*\.ts:\d+/);
	});

	it("answers 400 for a body that is not JSON", async () => {
		const response = await call("POST", "/verify", "{not json");
		expect(response.status).toBe(400);
		expect((await json(response)).error).toMatchObject({ code: "invalid_request", message: expect.stringContaining("JSON") });
	});

	it("answers 400 for a JSON body that is not an object", async () => {
		const response = await call("POST", "/verify", "[1,2,3]");
		expect(response.status).toBe(400);
	});

	it("answers 413 for a body over the limit", async () => {
		const body = valid();
		body.purchaseDetails.verificationData.serverVerificationData = "x".repeat(MAX_BODY_BYTES + 1);
		const response = await call("POST", "/verify", body);
		expect(response.status).toBe(413);
		expect((await json(response)).error.code).toBe("payload_too_large");
	});
});

describe("routes that do not exist", () => {
	it("answer 404 in the common error shape", async () => {
		const response = await call("GET", "/nope");
		expect(response.status).toBe(404);
		const body = await json(response);
		expect(body.error).toMatchObject({ code: "not_found", request_id: expect.any(String) });
		expect(response.headers.get("x-request-id")).toBe(body.error.request_id);
	});

	it("answer 404 for the wrong method on a known path", async () => {
		expect((await call("GET", "/verify")).status).toBe(404);
	});
});

describe("an app that requires its verify key on /verify", () => {
	const key = TEST_APPS.keyed.verifyKey;

	async function keyedPurchase() {
		const purchase = await emulator.createGooglePurchase({ productId: "premium_lifetime", packageName: TEST_APPS.keyed.packageName });
		return googleVerifyBody(purchase, { appId: TEST_APPS.keyed.id });
	}

	it("answers 401 without the key, and grants nothing", async () => {
		const response = await call("POST", "/verify", await keyedPurchase());
		expect(response.status).toBe(401);
		expect((await json(response)).error.code).toBe("unauthorized");
	});

	it("answers 401 with a wrong key, without echoing it", async () => {
		const response = await call("POST", "/verify?key=wrong-key-0123456789", await keyedPurchase());
		expect(response.status).toBe(401);
		expect(await response.text()).not.toContain("wrong-key-0123456789");
	});

	it("accepts the key as a query parameter", async () => {
		const response = await call("POST", `/verify?key=${encodeURIComponent(key)}`, await keyedPurchase());
		expect(await json(response)).toEqual({ complete_purchase: true });
	});

	it("accepts the key as the X-Verify-Key header", async () => {
		const response = await call("POST", "/verify", await keyedPurchase(), { "x-verify-key": key });
		expect(await json(response)).toEqual({ complete_purchase: true });
	});
});
