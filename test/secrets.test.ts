import { describe, expect, it } from "vitest";
import { findSecret, indexOfSecret, secretEquals } from "../src/http/secrets";

/** Secrets compared in constant time: API keys, verify keys, console keys, CSRF tokens. */

describe("comparing secrets", () => {
	it("says which configured secret of which group a presented one is", async () => {
		const groups = [["key-a1"], ["key-b1", "key-b2"], []];
		expect(await findSecret("key-b2", groups)).toEqual({ group: 1, index: 1 });
		expect(await findSecret("key-a1", groups)).toEqual({ group: 0, index: 0 });
		expect(await indexOfSecret("key-b2", groups[1]!)).toBe(1);
	});

	it("finds nothing for a near miss, a prefix, an extension, a different case or an empty string", async () => {
		const groups = [["sk_live_0123456789"]];
		for (const presented of ["sk_live_012345678", "sk_live_01234567890", "SK_LIVE_0123456789", "sk_live_0123456788", ""]) {
			expect(await findSecret(presented, groups), presented).toBeUndefined();
			expect(await indexOfSecret(presented, groups[0]!), presented).toBe(-1);
		}
		expect(await findSecret("anything", [])).toBeUndefined();
	});

	it("gives the same answer for a secret it has hashed before (digests of configured secrets are kept)", async () => {
		const keys = ["first-key", "second-key"];
		for (let i = 0; i < 3; i++) {
			expect(await indexOfSecret("second-key", keys)).toBe(1);
			expect(await indexOfSecret("third-key", keys)).toBe(-1);
		}
	});

	it("compares two values of any lengths", async () => {
		expect(await secretEquals("token", "token")).toBe(true);
		expect(await secretEquals("token", "token2")).toBe(false);
		expect(await secretEquals("", "")).toBe(true);
	});
});
