import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
it("runs", async () => {
	const r = await exports.default.fetch("http://x/");
	expect(await r.text()).toBe("ok");
	const e = await fetch(`${env.TEST_EMULATOR_URL}/x`);
	expect(await e.text()).toBe("emulator");
});
