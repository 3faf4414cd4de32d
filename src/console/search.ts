import { findPurchase, findPurchasesBy, listUserPurchases, type D1Reader, type HistoryEntry } from "../ledger/history";
import { STORES } from "../purchase";

/**
 * The console's search box: one string, tried as everything support is given: a transaction id or purchase token,
 * an order id (GPA.… or Apple's), an original transaction id, and a user id. Each is one indexed look-up through the
 * history's own read functions.
 */

export interface SearchResult {
	query: string;
	/** The user id, if the app has purchases for a user of exactly that id. */
	user: { userId: string; purchases: number; more: boolean } | null;
	purchases: { entry: HistoryEntry; matched: "transaction id" | "order id" | "original transaction id" }[];
}

export async function search(db: D1Reader, appId: string, query: string): Promise<SearchResult> {
	const q = query.trim();
	const [byTransaction, byOrder, byOriginal, userPage] = await Promise.all([
		Promise.all(STORES.map((store) => findPurchase(db, store, q))),
		findPurchasesBy(db, appId, { orderId: q }, 20),
		/^\d{1,32}$/.test(q) ? findPurchasesBy(db, appId, { originalTransactionId: q }, 20) : Promise.resolve([]),
		listUserPurchases(db, appId, q, 10),
	]);
	const seen = new Set<string>();
	const purchases: SearchResult["purchases"] = [];
	const add = (entry: HistoryEntry | null, matched: SearchResult["purchases"][number]["matched"]) => {
		if (!entry || entry.appId !== appId) return;
		const key = `${entry.store}:${entry.transactionId}`;
		if (seen.has(key)) return;
		seen.add(key);
		purchases.push({ entry, matched });
	};
	byTransaction.forEach((e) => add(e, "transaction id"));
	byOrder.forEach((e) => add(e, "order id"));
	byOriginal.forEach((e) => add(e, "original transaction id"));
	const user = userPage.entries.length > 0 ? { userId: q, purchases: userPage.entries.length, more: userPage.next !== null } : null;
	return { query: q, user, purchases };
}
