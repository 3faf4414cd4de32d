import { Hono, type Context } from "hono";
import { amazonReceipts, rvsResource } from "./amazon-receipts";
import { configOf } from "./config";
import { storeEndpoint } from "./store-endpoint";

/**
 * Amazon's Receipt Verification Service (https://developer.amazon.com/docs/in-app-purchasing/iap-rvs-for-android-apps.html),
 * production and the Cloud Sandbox, mounted at {endpoints.amazon} = {base}/amazon:
 *   GET /amazon[/sandbox]/version/1.0/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}
 * Production checks the shared secret against the developer accounts it knows (496) and only answers for receipts of
 * that account's apps; the Cloud Sandbox ignores the secret and knows only App Tester's (sandbox) receipts, as
 * Amazon's do. 400: an unknown receipt id; 497: a user id the receipt is not for; 410: a receipt no longer valid.
 * Errors are Amazon's {"message": ..., "status": false}. Calls are recorded (and faults matched) by their path with
 * the shared secret left out: the emulator shows what reached it without repeating the secret.
 */

function rvsError(c: Context, status: 400 | 404 | 410 | 496 | 497, message: string) {
	return c.json({ message, status: false }, status as 400);
}

/** The call's subject: its path without the developer segment. */
function subjectOf(c: Context): string {
	const { user, receipt } = c.req.param() as { user: string; receipt: string };
	const sandbox = new URL(c.req.url).pathname.startsWith("/amazon/sandbox/");
	return `/amazon${sandbox ? "/sandbox" : ""}/verifyReceiptId/user/${user}/receiptId/${receipt}`;
}

function verifyReceiptId(sandbox: boolean) {
	return (c: Context) => {
		const { version, secret, user, receipt: receiptId } = c.req.param() as { version: string; secret: string; user: string; receipt: string };
		if (version !== "1.0") return rvsError(c, 404, `Unknown operation version ${version}`);
		const apps = configOf(c).amazon.apps;
		// The Cloud Sandbox takes any non-empty secret; production only a developer account's own.
		if (!sandbox && !apps.some((a) => a.sharedSecret === secret)) return rvsError(c, 496, "Invalid developer sharedSecret");
		const receipt = amazonReceipts.get(receiptId);
		if (!receipt || receipt.sandbox !== sandbox) return rvsError(c, 400, "Invalid receiptID");
		if (!sandbox && !apps.some((a) => a.sharedSecret === secret && a.packageName === receipt.packageName)) return rvsError(c, 400, "Invalid receiptID");
		if (receipt.userId !== user) return rvsError(c, 497, "Invalid userId");
		if (receipt.gone) return rvsError(c, 410, "The receipt is no longer valid");
		return c.json(rvsResource(receipt));
	};
}

const PATH = "/version/:version/verifyReceiptId/developer/:secret/user/:user/receiptId/:receipt";

export const amazonRvs = new Hono();
amazonRvs.get(`/sandbox${PATH}`, storeEndpoint("amazon.rvs.sandbox", subjectOf), verifyReceiptId(true));
amazonRvs.get(PATH, storeEndpoint("amazon.rvs", subjectOf), verifyReceiptId(false));
