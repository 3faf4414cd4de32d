import { InvalidNotification } from "../answers";
import type { AppleApiEnvironment } from "../apple/api-client";
import { verifyAppleNotification } from "../apple/notifications";
import { apiClientFor } from "../apple/verify";
import type { AppConfig, Config } from "../config/schema";
import { googleClientFor } from "../google/verify";
import { findPurchase } from "../ledger/history";
import { readSyncState, writeSyncState } from "../ledger/sync-state";
import type { Logger } from "../log";
import { applyAppleNotification } from "./apple";
import { applyStatement } from "./apply";

/**
 * The scheduled catch-up (a Cron Trigger): what the stores' notifications may have missed, fetched from the stores
 * and applied exactly as a notification would be (deduplication makes replays harmless).
 *   - Google: purchases.voidedpurchases.list (subscriptions included) marks voided purchases refunded or revoked.
 *   - Apple: Get Notification History feeds every notification through the notification handler.
 * Each source keeps in D1 how far it got, page by page: a store outage stops a run where it is, and the next run
 * resumes there. A window is only marked done once its last page is applied, so none is ever skipped.
 */

const DAY_MS = 24 * 3600 * 1000;
/** How far back a source's first run looks. */
const FIRST_LOOKBACK_MS = { google: 30 * DAY_MS, apple: 7 * DAY_MS };
/**
 * How far back each store lets a window start (Google refuses a voidedpurchases.list startTime older than 30 days,
 * Apple a notification history startDate older than 180), with an hour to spare for clocks and slow runs.
 */
const OLDEST_MS = { google: 30 * DAY_MS - 3600 * 1000, apple: 180 * DAY_MS - 3600 * 1000 };
/** Each window starts a little before the last one ended: a store may index an item late. Replays change nothing. */
const OVERLAP_MS = 5 * 60 * 1000;
/** Pages per source per run, so one run stays short; what is left is taken up by the next. */
const MAX_PAGES = 20;

export interface CatchUpReport {
	app: string;
	source: string;
	pages: number;
	applied: number;
	skipped: number;
	/** Whether the window was finished; false when a store or D1 stopped the run (it resumes next time). */
	complete: boolean;
	error?: string;
}

interface Page<T> {
	items: T[];
	next: string | undefined;
}

export async function catchUp(env: Env, config: Config, log: Logger, now = Date.now()): Promise<CatchUpReport[]> {
	const reports: CatchUpReport[] = [];
	for (const app of config.apps) {
		if (app.google) reports.push(await googleVoided(env, config, app, log, now));
		if (app.apple?.api) {
			const environments: AppleApiEnvironment[] = app.acceptSandbox ? ["Production", "Sandbox"] : ["Production"];
			for (const environment of environments) reports.push(await appleHistory(env, config, app, environment, log, now));
		}
	}
	return reports;
}

async function googleVoided(env: Env, config: Config, app: AppConfig, log: Logger, now: number): Promise<CatchUpReport> {
	const client = googleClientFor(app, config);
	return runSource(env, app, "google.voided", { firstLookbackMs: FIRST_LOOKBACK_MS.google, oldestMs: OLDEST_MS.google }, now, log, {
		async page(window, token): Promise<Page<{ purchaseToken: string; voidedTimeMillis: string; voidedSource?: number | undefined; voidedReason?: number | undefined }>> {
			const { value } = await client.listVoidedPurchases({ startTime: window.start, endTime: window.end }, token);
			return { items: value.voidedPurchases, next: value.tokenPagination?.nextPageToken };
		},
		async apply(voided): Promise<boolean> {
			const held = await findPurchase(env.DB, "google_play", voided.purchaseToken);
			// A purchase nobody here has seen: Google answers any later verification of it with its void.
			if (!held) return false;
			// Google taking the money back for fraud or a chargeback is a revocation; anything else a refund.
			const revoked = voided.voidedSource === 2 && [5, 6, 7].includes(voided.voidedReason ?? -1);
			const voidedAt = Number(voided.voidedTimeMillis);
			await applyStatement(
				env,
				"google_play",
				held.subscriptionId ?? held.transactionId,
				{ kind: "voided", store: "google_play", transactionId: voided.purchaseToken, state: revoked ? "revoked" : "refunded", asOf: voidedAt },
				`voided:${voided.purchaseToken}:${voidedAt}`,
			);
			return true;
		},
	});
}

async function appleHistory(env: Env, config: Config, app: AppConfig, environment: AppleApiEnvironment, log: Logger, now: number): Promise<CatchUpReport> {
	const client = apiClientFor(app, config)!;
	return runSource(env, app, `apple.history.${environment}`, { firstLookbackMs: FIRST_LOOKBACK_MS.apple, oldestMs: OLDEST_MS.apple }, now, log, {
		async page(window, token): Promise<Page<{ signedPayload: string }>> {
			const value = await client.getNotificationHistory(environment, { startDate: window.start, endDate: window.end }, token);
			return { items: value.notificationHistory, next: value.hasMore ? value.paginationToken : undefined };
		},
		async apply(item): Promise<boolean> {
			try {
				const verified = await verifyAppleNotification(item.signedPayload, { roots: config.appleTrustStore, apps: config.apps });
				await applyAppleNotification(env, verified, "catch_up", log);
				return true;
			} catch (err) {
				// One notification that does not verify (or names another app) must not hold up the rest.
				if (err instanceof InvalidNotification) {
					log.warn("catch_up_notification_refused", { app: app.id, environment, reason: err.message });
					return false;
				}
				throw err;
			}
		},
	});
}

async function runSource<T>(
	env: Env,
	app: AppConfig,
	source: string,
	reach: { firstLookbackMs: number; oldestMs: number },
	now: number,
	log: Logger,
	io: { page(window: { start: number; end: number }, token: string | undefined): Promise<Page<T>>; apply(item: T): Promise<boolean> },
): Promise<CatchUpReport> {
	const report: CatchUpReport = { app: app.id, source, pages: 0, applied: 0, skipped: 0, complete: false };
	try {
		const saved = (await readSyncState(env.DB, app.id, source)) ?? { doneUntil: now - reach.firstLookbackMs, windowEnd: null, pageToken: null };
		const oldest = now - reach.oldestMs;
		// What the store no longer keeps cannot be asked for: a run after a long outage starts as far back as it can
		// (and a window begun before then starts over, since its page token belongs to the old query).
		const state = saved.doneUntil < oldest ? { doneUntil: oldest, windowEnd: null, pageToken: null } : saved;
		if (state !== saved) log.warn("catch_up_window_clamped", { app: app.id, source, from: saved.doneUntil, to: oldest });
		// Resume an unfinished window where it stopped; else a new one from where the last ended, up to now.
		const window = { start: Math.max(oldest, state.doneUntil - (state.windowEnd === null ? OVERLAP_MS : 0)), end: state.windowEnd ?? now };
		let token = state.windowEnd === null ? undefined : (state.pageToken ?? undefined);
		while (report.pages < MAX_PAGES) {
			const page = await io.page(window, token);
			report.pages += 1;
			for (const item of page.items) {
				if (await io.apply(item)) report.applied += 1;
				else report.skipped += 1;
			}
			token = page.next;
			if (token === undefined) {
				await writeSyncState(env.DB, app.id, source, { doneUntil: window.end, windowEnd: null, pageToken: null });
				report.complete = true;
				break;
			}
			// Mid-window: the exact window is kept with the page token, which Google and Apple bind to the query.
			await writeSyncState(env.DB, app.id, source, { doneUntil: window.start, windowEnd: window.end, pageToken: token });
		}
	} catch (err) {
		report.error = err instanceof Error ? err.message : "unknown error";
		log.warn("catch_up_stopped", { app: app.id, source, pages: report.pages, error: err });
	}
	log.info("catch_up", { ...report });
	return report;
}
