import { waitUntil } from "cloudflare:workers";
import { createLogger } from "../log";
import type { BucketRef } from "./buckets";
import { limiterStub } from "./gate";
import type { SavedKind } from "./limiter";

/**
 * Calls the service did not make (answered from the ledger, shared with a concurrent caller, or from the negative
 * cache), counted in this isolate and handed to each bucket's limiter about once a second, so that saving a store
 * call never costs a Durable Object call of its own.
 */

const FLUSH_AFTER_MS = 1_000;

const pending = new Map<string, { ref: BucketRef; counts: Partial<Record<SavedKind, number>> }>();
let scheduled = false;

export function noteSaved(ref: BucketRef, kind: SavedKind): void {
	const key = JSON.stringify([ref.appId, ref.store, ref.bucket, ref.environment]);
	const entry = pending.get(key) ?? { ref, counts: {} };
	entry.counts[kind] = (entry.counts[kind] ?? 0) + 1;
	pending.set(key, entry);
	if (scheduled) return;
	scheduled = true;
	waitUntil(
		(async () => {
			await new Promise((resolve) => setTimeout(resolve, FLUSH_AFTER_MS));
			scheduled = false;
			const batch = [...pending.values()];
			pending.clear();
			await Promise.all(
				batch.map(({ ref: bucket, counts }) =>
					limiterStub(bucket)
						.saved(bucket, counts)
						.catch((err: unknown) => createLogger("upstream:saved").warn("saved_not_counted", { app: bucket.appId, bucket: bucket.bucket, counts, error: err })),
				),
			);
		})(),
	);
}
