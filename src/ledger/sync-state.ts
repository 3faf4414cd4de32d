import { withSchema } from "./schema";

/** The sync_state table (migrations/0002): how far each scheduled catch-up got, per app and source. */

export interface SyncState {
	/** Everything the source reported before this time (ms) has been applied. */
	doneUntil: number;
	/** A window a run started and did not finish: its end, and the page it reached. */
	windowEnd: number | null;
	pageToken: string | null;
}

export async function readSyncState(db: D1Database, appId: string, source: string): Promise<SyncState | null> {
	const row = await withSchema(() =>
		db
			.prepare(`SELECT done_until, window_end, page_token FROM sync_state WHERE app_id = ?1 AND source = ?2`)
			.bind(appId, source)
			.first<{ done_until: number; window_end: number | null; page_token: string | null }>(),
	);
	return row ? { doneUntil: row.done_until, windowEnd: row.window_end, pageToken: row.page_token } : null;
}

export async function writeSyncState(db: D1Database, appId: string, source: string, state: SyncState, now = Date.now()): Promise<void> {
	await withSchema(() =>
		db
			.prepare(
				`INSERT INTO sync_state (app_id, source, done_until, window_end, page_token, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
				 ON CONFLICT (app_id, source) DO UPDATE SET done_until = excluded.done_until, window_end = excluded.window_end,
					page_token = excluded.page_token, updated_at = excluded.updated_at`,
			)
			.bind(appId, source, state.doneUntil, state.windowEnd, state.pageToken, now)
			.run(),
	);
}
