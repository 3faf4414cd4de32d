/**
 * The README's walkthrough, run for you: create a purchase in the store emulator, verify it through
 * /verify (true), verify it again as another user (false), read the history; the same on the App Store, then a
 * refund the store notifies and the history says so. Returns whether every step answered as expected.
 */
import { SAMPLE_APP } from "../test/support/fixtures.ts";

export async function runDemo(service: string, emulator: string): Promise<boolean> {
	let ok = true;
	const step = (title: string) => console.log(`\n── ${title}`);
	const show = (label: string, value: unknown) => console.log(`   ${label}: ${JSON.stringify(value)}`);
	const expect = (what: string, condition: boolean) => {
		console.log(`   ${condition ? "✔" : "✘"} ${what}`);
		ok &&= condition;
	};

	step("1. A user buys premium_monthly on Google Play (the emulator plays Google)");
	const created = (await (
		await fetch(`${emulator}/_emulator/google/purchases`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ packageName: SAMPLE_APP.packageName, productId: "premium_monthly", type: "subscription" }),
		})
	).json()) as { purchaseToken: string; orderId: string; localVerificationData: string };
	show("purchase token", `${created.purchaseToken.slice(0, 24)}…`);

	const body = (user: string) => ({
		userIdentifier: user,
		appId: Number(SAMPLE_APP.id),
		purchaseDetails: {
			verificationData: { serverVerificationData: created.purchaseToken, localVerificationData: created.localVerificationData, source: "google_play" },
			productID: "premium_monthly",
			purchaseID: created.orderId,
			status: "purchased",
			transactionDate: String(Date.now()),
		},
	});
	const verify = async (user: string) => {
		const response = await fetch(`${service}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body(user)) });
		return { status: response.status, body: (await response.json()) as { complete_purchase?: boolean } };
	};

	step("2. The app sends it to POST /verify for user123");
	const first = await verify("user123");
	show(`answer ${first.status}`, first.body);
	expect("complete_purchase is true", first.status === 200 && first.body.complete_purchase === true);

	step("3. Someone else sends the same token (receipt sharing)");
	const second = await verify("someone-else");
	show(`answer ${second.status}`, second.body);
	expect("complete_purchase is false", second.status === 200 && second.body.complete_purchase === false);

	step("4. The app's backend reads user123's history");
	const history = (await (
		await fetch(`${service}/v1/users/user123/purchases`, { headers: { authorization: `Bearer ${SAMPLE_APP.apiKey}` } })
	).json()) as { purchases: { productId: string; state: string; entitled: boolean }[] };
	show("purchases", history.purchases.map(({ productId, state, entitled }) => ({ productId, state, entitled })));
	expect("the purchase is in user123's history", history.purchases.some((p) => p.productId === "premium_monthly" && p.entitled));

	step("5. A user buys premium_lifetime on the App Store; StoreKit 2 hands the app a signed transaction");
	const tx = (await (
		await fetch(`${emulator}/_emulator/apple/transactions`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ bundleId: SAMPLE_APP.bundleId, productId: "premium_lifetime", type: "Non-Consumable" }),
		})
	).json()) as { transactionId: string; signedTransaction: string; receipt: string };
	show("transaction id", tx.transactionId);
	const appleBody = (user: string, data: string) => ({
		userIdentifier: user,
		appId: Number(SAMPLE_APP.id),
		purchaseDetails: {
			verificationData: { serverVerificationData: data, localVerificationData: data, source: "app_store" },
			productID: "premium_lifetime",
			purchaseID: tx.transactionId,
			status: "purchased",
			transactionDate: String(Date.now()),
		},
	});
	const verifyApple = async (user: string, data: string) => {
		const response = await fetch(`${service}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(appleBody(user, data)) });
		return { status: response.status, body: (await response.json()) as { complete_purchase?: boolean } };
	};
	const signed = await verifyApple("user123", tx.signedTransaction);
	show(`answer ${signed.status}`, signed.body);
	expect("the signed transaction (checked up to the root, offline) completes", signed.status === 200 && signed.body.complete_purchase === true);

	step("6. Someone else sends the legacy receipt holding the same transaction");
	const shared = await verifyApple("someone-else", tx.receipt);
	show(`answer ${shared.status}`, shared.body);
	expect("complete_purchase is false", shared.status === 200 && shared.body.complete_purchase === false);

	step("7. Apple refunds it; the App Store sends its server notification (the emulator plays Apple)");
	const refund = await fetch(`${emulator}/_emulator/apple/transactions/${tx.transactionId}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ revoked: "REFUND_FULL" }),
	});
	show("emulator", refund.status === 200 ? "refunded; REFUND notification sent to /v1/notifications/apple" : `answered ${refund.status}`);
	// Nobody verifies the purchase again: the notification alone brings the history up to date.
	const refunded = await eventually(async () => {
		const page = (await (await fetch(`${service}/v1/users/user123/purchases`, { headers: { authorization: `Bearer ${SAMPLE_APP.apiKey}` } })).json()) as {
			purchases: { transactionId: string; state: string; entitled: boolean }[];
		};
		const held = page.purchases.find((p) => p.transactionId === tx.transactionId);
		return held?.state === "refunded" ? held : undefined;
	});
	show("history", refunded ? { productId: "premium_lifetime", state: refunded.state, entitled: refunded.entitled } : "still not refunded");
	expect("the history says refunded, with no second verification", refunded !== undefined && !refunded.entitled);

	console.log(ok ? "\ndemo: every step answered as expected" : "\ndemo: a step did not answer as expected");
	return ok;
}

/** What `check` finds within a few seconds (the emulator delivers notifications in the background), else undefined. */
async function eventually<T>(check: () => Promise<T | undefined>): Promise<T | undefined> {
	for (let i = 0; i < 50; i++) {
		const found = await check();
		if (found !== undefined) return found;
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
	return undefined;
}
