/**
 * `npm run bench:load` (not part of `npm test`): the real Worker under load on local workerd, beside the store
 * emulator, and the peer a user would otherwise run (bench/peer.ts), all driven by autocannon at 64 connections in
 * paired rounds. What each case and figure means: bench/README.md. Writes the `load` figures of
 * bench/results.json (keeping `p1`, from `npm run bench`).
 *
 * Harness: Miniflare directly, the library `wrangler dev` itself runs workerd through, without wrangler's proxy
 * worker, file watcher, dev registry or local observability. The Worker is the bundle `wrangler deploy --dry-run`
 * builds, with the bindings wrangler.toml declares (wrangler's own translation of it); D1 and Durable Object
 * storage persist to a fresh folder on disk, as under `wrangler dev`. Two workerd processes, as `npm run dev` has:
 * the service and the emulator. Ports are free ones picked at start (never 8787/8788), and the configuration is
 * generated fresh (test/support/fixtures.ts).
 *
 * Environment: BENCH_LOAD_ROUNDS (default 5), BENCH_LOAD_SECONDS (per case and round, default 5),
 * BENCH_LOAD_NOTIFICATIONS (notifications per notification case and round, default 600), BENCH_LOAD_CASES (a
 * comma-separated subset of health,replay,fresh,google,peer,notify_apple,notify_google,access_one,access_many,
 * webhooks; health is always run, as the baseline; a subset is printed, not written to bench/results.json).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { readD1Migrations } from "@cloudflare/vitest-plugin";
import autocannon, { type Result } from "autocannon";
import { build } from "esbuild";
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { createFixtures, SAMPLE_APP, TEST_APPS } from "../test/support/fixtures.ts";
import { APPLE_EVENTS, APPLE_SAMPLE } from "../test/support/apple-fixtures.ts";
import {
	appleBody,
	appleRefunds,
	delivered,
	freshAppleBodies,
	googleBody,
	googleCancellations,
	outbox,
	Pool,
	post,
	SAMPLE,
	storeCalls,
	userWithPurchases,
	type BenchApp,
	type Delivery,
} from "./load-pools.ts";
import { processCpuNs, WORKERD_RESOLUTION, workerdChildren } from "./isolate.ts";
import { startOcspPki } from "./pki.ts";
import { writeSection } from "./results.ts";
import { median, round, spread } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_LOAD_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
const NOTIFICATIONS = Number(process.env.BENCH_LOAD_NOTIFICATIONS ?? 600);
/** Verifications per app and round in the webhooks comparison, one at a time. */
const WEBHOOK_REQUESTS = 150;
/** A user's purchases in access_many (access_one's user has one). */
const MANY = 1000;
/** The app with three webhook endpoints (the events app of the test fixtures, given a third endpoint here). */
const WEBHOOK_APP: BenchApp = { id: TEST_APPS.events.id, bundleId: APPLE_EVENTS.bundleId };
const CONNECTIONS = 64;
/** After each case: how often the processes' CPU is read, and how long at most to wait for them to go idle. */
const SETTLE_INTERVAL_MS = 250;
const SETTLE_MAX_MS = 60_000;
const OUT = ".tmp/bench-load";
const HOST = "127.0.0.1";
/** As in wrangler.toml and test/emulator/wrangler.toml. */
const COMPATIBILITY_DATE = "2026-11-01";
const TRUE = '{"complete_purchase":true}';
/**
 * The Workers' own logs (a JSON line per request) are produced as in production, then dropped here rather than
 * printed: a terminal scrolling 100,000 lines would be the bottleneck, and local observability is not the subject.
 */
const quiet = { log: new NoOpLog(), handleStructuredLogs: () => {} };

type CaseName = "health" | "replay" | "fresh" | "google" | "peer" | "notify_apple" | "notify_google" | "access_one" | "access_many";
const ALL_CASES: readonly CaseName[] = ["health", "replay", "fresh", "google", "peer", "notify_apple", "notify_google", "access_one", "access_many"];
const CHOSEN = process.env.BENCH_LOAD_CASES?.split(",");
const CASES: readonly CaseName[] = CHOSEN ? ALL_CASES.filter((name) => name === "health" || CHOSEN.includes(name)) : ALL_CASES;
/** The webhooks comparison: /verify latency for an app with three webhook endpoints and one with none. */
const WEBHOOKS = !CHOSEN || CHOSEN.includes("webhooks");
const ALL_CHOSEN = CASES.length === ALL_CASES.length && WEBHOOKS;
/** Cases that send a fixed number of notifications per round rather than run for SECONDS. */
const NOTIFY_CASES: ReadonlySet<CaseName> = new Set(["notify_apple", "notify_google"]);
const LABELS: Record<CaseName, string> = {
	health: "(a) GET /health",
	replay: "(b) /verify, one App Store JWS replayed by its owner",
	fresh: "(c) /verify, a fresh App Store JWS per request",
	google: "(d) /verify, one Google purchase replayed by its owner (answered from the ledger)",
	peer: "(e) peer: Node + Apple's library, the JWS of (b)",
	notify_apple: "(f) App Store notification (REFUND of an owned purchase)",
	notify_google: "(g) Google notification (CANCELED, owned subscription)",
	access_one: "(h) GET access/premium, a user with 1 purchase",
	access_many: `(i) GET access/premium, a user with ${MANY} purchases`,
};

interface CaseRun {
	/** CPU time per answered request of the processes serving this case (workerd: service and emulator; or the peer). */
	cpuMs?: number;
	rps: number;
	p50: number;
	p99: number;
	requests: number;
	/** Connection errors and timeouts, as autocannon counts them. */
	errors: number;
	non2xx: number;
	/** 2xx answers that were not the expected one (a `false` from /verify, a /health that is not ok). */
	wrongAnswers: number;
	statuses: Record<string, number>;
	/** How long the processes kept working after the case's last answer (ms), counted in cpuMs. */
	settleMs?: number;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
	cleaning ??= (async () => {
		for (const cleanup of cleanups.reverse()) {
			try {
				await cleanup();
			} catch {
				// keep stopping the rest
			}
		}
	})();
	return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.on(signal, () => {
		console.error(`\nbench:load: ${signal}, stopping what it started`);
		void cleanUp().then(() => process.exit(130));
	});
}

async function main(): Promise<void> {
	mkdirSync(OUT, { recursive: true });
	const [servicePort, emulatorPort, peerPort] = (await freePorts(3)) as [number, number, number];
	const service = `http://${HOST}:${servicePort}`;
	const emulator = `http://${HOST}:${emulatorPort}`;
	const peer = `http://${HOST}:${peerPort}`;
	console.log(`bench:load: Node ${process.version}; ${ROUNDS} rounds × ${CASES.length} cases × ${SECONDS}s (notifications: ${NOTIFICATIONS} a round) at ${CONNECTIONS} connections`);
	console.log(`bench:load: service ${service}, emulator ${emulator}, peer ${peer} (Miniflare; see bench/README.md)`);

	// The Worker exactly as wrangler would deploy it, and the emulator bundled as the tests bundle it.
	const serviceScript = await buildService();
	await build({
		entryPoints: ["test/emulator/src/index.ts"],
		bundle: true,
		format: "esm",
		platform: "neutral",
		// The emulator's webhook receiver uses the standardwebhooks package.
		...WORKERD_RESOLUTION,
		target: "es2023",
		outfile: `${OUT}/emulator.mjs`,
		logLevel: "warning",
	});

	// Fresh configuration. The emulator signs with the bench PKI, whose certificates name a local OCSP responder,
	// so that the peer can run Apple's library with online checks (and so its cache) on.
	const pki = await startOcspPki();
	cleanups.push(() => pki.close());
	// The sample app without webhooks, so that (c) measures a verification, and the test fixtures' events app with
	// three webhook endpoints (all the emulator's receiver), for the webhooks comparison.
	const fixtures = await createFixtures({ emulatorUrl: emulator, serviceUrl: service, includeTestApps: true, sampleWebhook: false });
	(fixtures.emulatorConfig.apple as { signing: unknown }).signing = { privateKey: pki.leaf.privateKeyPkcs8Pem, x5c: pki.x5c };
	fixtures.appsConfig.appleRootCertificates = [pki.root.base64];
	const webhookApp = (fixtures.appsConfig.apps as { id: string; webhooks?: { url: string; secret: unknown; events: string[] }[] }[]).find((app) => app.id === WEBHOOK_APP.id)!;
	const { url: receiver, secret } = webhookApp.webhooks![0]!;
	webhookApp.webhooks = ["first", "second", "third"].map((endpoint) => ({ url: `${receiver}?endpoint=${endpoint}`, secret, events: ["*"] }));
	// (k)'s baseline: the sample app with a freshness of 0, so that every replay asks Google, as every Google
	// verification did before replays were answered from the ledger; its quota raised so the limiter never holds it.
	const appsList = fixtures.appsConfig.apps as Record<string, unknown>[];
	const sampleApp = appsList.find((a) => a.id === SAMPLE_APP.id)!;
	// Without the Amazon block: Amazon's notifications find an app by its package, which must name one app.
	const { amazon: _amazon, ...sampleWithoutAmazon } = sampleApp;
	appsList.push({
		...sampleWithoutAmazon,
		id: ASK_APP,
		apiKeys: [ASK_APP_KEY],
		webhooks: [],
		freshness: { withNotifications: { oneTimeSeconds: 0, subscriptionSeconds: 0 }, withoutNotifications: { oneTimeSeconds: 0, subscriptionSeconds: 0 } },
		quotas: { limits: { "google_play.subscriptions": { limit: 1_000_000, periodSeconds: 60 } } },
	});

	const beforeEmulator = workerdChildren();
	const emulatorMf = new Miniflare(
		convertV4MiniflareOptions({
			host: HOST,
			port: emulatorPort,
			...quiet,
			workers: [{ name: "store-emulator", modules: true, scriptPath: `${OUT}/emulator.mjs`, compatibilityDate: COMPATIBILITY_DATE, bindings: { EMULATOR_CONFIG: JSON.stringify(fixtures.emulatorConfig) } }],
		}),
	);
	cleanups.push(() => emulatorMf.dispose());
	await emulatorMf.ready;
	const emulatorPid = [...workerdChildren()].find((pid) => !beforeEmulator.has(pid));

	const state = mkdtempSync(resolve(OUT, "state-"));
	cleanups.push(() => rmSync(state, { recursive: true, force: true }));
	const beforeService = workerdChildren();
	const serviceMf = new Miniflare(
		convertV4MiniflareOptions({
			host: HOST,
			port: servicePort,
			...quiet,
			resourcePersistencePath: state,
			workers: [{ ...serviceWorkerOptions(), name: "iap-edge", modules: true, scriptPath: serviceScript, bindings: { APPS_CONFIG: JSON.stringify(fixtures.appsConfig) } }],
		}),
	);
	cleanups.push(() => serviceMf.dispose());
	await serviceMf.ready;
	const servicePid = [...workerdChildren()].find((pid) => !beforeService.has(pid) && pid !== emulatorPid);
	await applyMigrations(await serviceMf.getD1Database("DB"));

	const peerProcess = await startPeer(peerPort, pki.root.base64);
	cleanups.push(() => stopProcess(peerProcess));

	await expectAnswer(`${service}/health`, undefined, (status, text) => status === 200 && text.startsWith('{"status":"ok"'), "the service's /health");

	// The purchases the cases present, each verified once by its owner before anything is timed.
	const apple = await post<{ signedTransaction: string; transactionId: string }>(`${emulator}/_emulator/apple/transactions`, { bundleId: APPLE_SAMPLE.bundleId, productId: "premium_lifetime", type: "Non-Consumable" });
	const replayBody = appleBody(SAMPLE, "load-replay-owner", apple.signedTransaction, apple.transactionId, "premium_lifetime");
	const google = await post<{ purchaseToken: string; localVerificationData: unknown }>(`${emulator}/_emulator/google/purchases`, { packageName: SAMPLE_APP.packageName, productId: "premium_monthly", type: "subscription" });
	const googleReplayBody = googleBody(SAMPLE, "load-google-owner", google, "premium_monthly");
	for (const [url, body, what] of [
		[`${service}/verify`, replayBody, "the replayed App Store purchase, first claim"],
		[`${service}/verify`, googleReplayBody, "the replayed Google purchase, first claim"],
		[`${peer}/verify`, replayBody, "the peer"],
	] as const) {
		await expectAnswer(url, body, (status, text) => status === 200 && text === TRUE, what);
	}

	// Fresh signed transactions for (c), made by the emulator before any round so its signing is not timed.
	const pool = new Pool<string>();
	if (CASES.includes("fresh")) pool.push(...(await freshAppleBodies(emulator, SAMPLE, 1500)));
	// Notifications for (f) and (g): purchases bought and claimed, then changed at the store, which makes the
	// notification; the service sees each once, in a round.
	const notifications = { app_store: new Pool<Delivery>(), google_play: new Pool<Delivery>() };
	const perStore = Math.max(CONNECTIONS, NOTIFICATIONS) * (ROUNDS + 1) + SAMPLED;
	if (CASES.includes("notify_apple")) {
		console.log(`bench:load: ${perStore} App Store purchases bought, claimed and refunded, for (f)`);
		await appleRefunds(service, emulator, SAMPLE, perStore);
		notifications.app_store.push(...(await outbox(emulator, "app_store")));
	}
	if (CASES.includes("notify_google")) {
		console.log(`bench:load: ${perStore} Google Play subscriptions bought, claimed and canceled, for (g)`);
		await googleCancellations(service, emulator, SAMPLE_APP, perStore);
		notifications.google_play.push(...(await outbox(emulator, "google_play")));
	}
	// Store calls per notification, counted at the emulator on a sample delivered before the rounds.
	const callsPerNotification: Partial<Record<Delivery["store"], { calls: number; tokens: number; sampled: number }>> = {};
	for (const store of ["app_store", "google_play"] as const) {
		if (notifications[store].available > 0) callsPerNotification[store] = await sampleStoreCalls(service, emulator, notifications[store].take(SAMPLED));
	}
	// Users for (h) and (i).
	if (CASES.includes("access_one") || CASES.includes("access_many")) {
		console.log(`bench:load: a user with 1 purchase and one with ${MANY}, for (h) and (i)`);
		await userWithPurchases(service, emulator, SAMPLE, ACCESS_ONE, 1);
		await userWithPurchases(service, emulator, SAMPLE, ACCESS_MANY, MANY);
	}
	// CPU time per request, where /proc tells it (Linux): the workerd processes for (a)–(d), the peer for (e).
	const cpuOf = (name: CaseName) => {
		const pids = name === "peer" ? [peerProcess.pid] : [servicePid, emulatorPid];
		return () => pids.reduce<number | undefined>((sum, pid) => (sum === undefined || pid === undefined ? undefined : addDefined(sum, processCpuNs(pid))), 0);
	};
	const targets = (name: CaseName) => ({ ...caseRequest(name, { service, peer, replayBody, googleBody: googleReplayBody, pool, notifications }), cpu: cpuOf(name), name });

	console.log("bench:load: warming up every case (not counted)");
	const warm: Partial<Record<CaseName, CaseRun>> = {};
	for (const name of CASES) warm[name] = await runCase(targets(name), 2);
	if (warm.fresh) {
		const needed = Math.ceil(warm.fresh.rps * SECONDS * ROUNDS * 1.6) + 500;
		console.log(`bench:load: (c) ran at ~${Math.round(warm.fresh.rps)} req/s in the warm-up; signing ${needed} fresh transactions with the emulator`);
		pool.push(...(await freshAppleBodies(emulator, SAMPLE, needed)));
	}
	const webhookPools = { none: new Pool<string>(), three: new Pool<string>() };
	if (WEBHOOKS) {
		const needed = WEBHOOK_REQUESTS * (ROUNDS + 1);
		webhookPools.none.push(...(await freshAppleBodies(emulator, SAMPLE, needed)));
		webhookPools.three.push(...(await freshAppleBodies(emulator, WEBHOOK_APP, needed)));
	}

	const rounds: Record<CaseName, CaseRun>[] = [];
	for (let r = 0; r < ROUNDS; r++) {
		const order = [...CASES.slice(r % CASES.length), ...CASES.slice(0, r % CASES.length)];
		const runs: Partial<Record<CaseName, CaseRun>> = {};
		for (const name of order) runs[name] = await runCase(targets(name), SECONDS);
		rounds.push(runs as Record<CaseName, CaseRun>);
		const busyAfter = (run: CaseRun) => ((run.settleMs ?? 0) >= 1000 ? ` (busy ${((run.settleMs ?? 0) / 1000).toFixed(1)} s after)` : "");
		console.log(`  round ${r + 1}/${ROUNDS}: ${CASES.map((name) => `${name} ${Math.round(runs[name]!.rps)}/s${busyAfter(runs[name]!)}`).join(", ")}`);
	}
	if (pool.exhausted) throw new Error("the pool of fresh transactions ran out during a round: (c) would have replayed; raise the pool size");
	if (notifications.app_store.exhausted || notifications.google_play.exhausted) throw new Error("a pool of notifications ran out during a round: one would have been a duplicate");

	// Webhooks: does a grant wait for them? One verification at a time (latency, not throughput), a fresh purchase
	// each, for an app with no webhook endpoint and one with three, alternating in every round.
	const webhookRounds: { none: CaseRun; three: CaseRun }[] = [];
	if (WEBHOOKS) {
		const one = (app: "none" | "three") => ({
			url: service,
			request: { method: "POST", path: "/verify", headers: { "content-type": "application/json" }, body: "", setupRequest: (request: import("autocannon").Request) => ({ ...request, body: webhookPools[app].next() }) },
			expect: (body: string) => body === TRUE,
		});
		await runAutocannon(one("none"), 0, { connections: 1, amount: WEBHOOK_REQUESTS });
		await runAutocannon(one("three"), 0, { connections: 1, amount: WEBHOOK_REQUESTS });
		for (let r = 0; r < ROUNDS; r++) {
			const runs: Partial<{ none: CaseRun; three: CaseRun }> = {};
			for (const app of r % 2 === 0 ? (["none", "three"] as const) : (["three", "none"] as const)) runs[app] = await runAutocannon(one(app), 0, { connections: 1, amount: WEBHOOK_REQUESTS });
			webhookRounds.push(runs as { none: CaseRun; three: CaseRun });
			console.log(`  webhooks round ${r + 1}/${ROUNDS}: none p50 ${runs.none!.p50} ms, three p50 ${runs.three!.p50} ms`);
		}
		if (webhookPools.none.exhausted || webhookPools.three.exhausted) throw new Error("a pool of fresh transactions ran out in the webhooks comparison");
	}
	const hundred = CASES.includes("google") ? await hundredPurchases(service, emulator, rounds) : undefined;
	report(rounds, webhookRounds, callsPerNotification, hundred);
}

/** Notifications delivered before the rounds to count the store calls each makes. */
const SAMPLED = 50;
const ACCESS_ONE = "load-access-one";
const ACCESS_MANY = "load-access-many";

/**
 * Delivers `sample` one at a time (not timed) and counts, at the emulator, the store calls each made about its own
 * purchase, and the access tokens asked for meanwhile.
 */
async function sampleStoreCalls(service: string, emulator: string, sample: Delivery[]): Promise<{ calls: number; tokens: number; sampled: number }> {
	const tokensBefore = await storeCalls(emulator, { endpoint: "google.token" });
	let calls = 0;
	for (const delivery of sample) {
		const before = await storeCalls(emulator, { match: delivery.transactionId });
		const response = await fetch(`${service}${delivery.path}`, { method: "POST", headers: delivery.headers, body: delivery.body });
		const text = await response.text();
		if (!response.ok || !acceptedNotification(text)) throw new Error(`a ${delivery.store} notification was answered ${response.status} ${text.slice(0, 300)}`);
		await delivered(emulator, delivery, response.status);
		calls += (await storeCalls(emulator, { match: delivery.transactionId })) - before;
	}
	return { calls, tokens: (await storeCalls(emulator, { endpoint: "google.token" })) - tokensBefore, sampled: sample.length };
}

/** A notification the service took and applied: not refused, and not a duplicate of one it had. */
function acceptedNotification(body: string): boolean {
	return body.includes('"received":true') && !body.includes('"duplicate"');
}


const ASK_APP = "bench-ask-every-time";
const ASK_APP_KEY = "bench-ask-api-key-0123456789abcdef";
const HUNDRED_REPLAYS = 10_000;

interface HundredRun {
	app: string;
	rps: number;
	requests: number;
	errors: number;
	non2xx: number;
	wrongAnswers: number;
	/** Play API look-ups during the replays: counted by the emulator, and by the service's limiter (GET /v1/stats/upstream). */
	storeCallsAtEmulator: number;
	storeCallsByLimiter: number;
}

/**
 * (k) 10,000 /verify replays of 100 Google subscriptions, each first verified once by its owner: the sample app, whose
 * replays the ledger answers, and the same with a freshness of 0, where each replay asks Google (as before).
 */
async function hundredPurchases(service: string, emulator: string, rounds: Record<CaseName, CaseRun>[]): Promise<{ ledger: HundredRun; ask: HundredRun; replayRps: number }> {
	const run = async (appId: string, apiKey: string): Promise<HundredRun> => {
		const bodies: string[] = [];
		for (let i = 0; i < 100; i++) {
			const created = await post<{ purchaseToken: string; localVerificationData: unknown }>(`${emulator}/_emulator/google/purchases`, { packageName: SAMPLE_APP.packageName, productId: "premium_monthly", type: "subscription", acknowledged: true });
			const body = JSON.stringify({
				userIdentifier: `load-hundred-${appId}-${i}`,
				appId,
				purchaseDetails: {
					verificationData: { serverVerificationData: created.purchaseToken, localVerificationData: typeof created.localVerificationData === "string" ? created.localVerificationData : JSON.stringify(created.localVerificationData), source: "google_play" },
					productID: "premium_monthly",
					status: "purchased",
				},
			});
			await expectAnswer(`${service}/verify`, body, (status, text) => status === 200 && text === TRUE, `purchase ${i} of (k), first claim`);
			bodies.push(body);
		}
		const emulatorCalls = async () => (await (await fetch(`${emulator}/_emulator/calls?endpoint=google.subscriptionsv2.get`)).json() as { calls: { at: number }[] }).calls;
		const limiterCalls = async () => {
			const stats = (await (await fetch(`${service}/v1/stats/upstream`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { buckets: { bucket: string; lastHour: { calls: number } }[] };
			return stats.buckets.find((b) => b.bucket === "subscriptions")!.lastHour.calls;
		};
		const since = Date.now();
		const limiterBefore = await limiterCalls();
		let next = 0;
		let wrongAnswers = 0;
		const result = await new Promise<Result>((resolvePromise, reject) => {
			autocannon(
				{
					url: service,
					connections: CONNECTIONS,
					amount: HUNDRED_REPLAYS,
					timeout: 30,
					requests: [
						{
							method: "POST",
							path: "/verify",
							headers: { "content-type": "application/json" },
							setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! }),
							onResponse: (status, body) => {
								if (status >= 200 && status < 300 && body !== TRUE) wrongAnswers++;
							},
						},
					],
				},
				(error, r: Result) => (error ? reject(error) : resolvePromise(r)),
			);
		});
		const answered = result["2xx"] + result.non2xx;
		return {
			app: appId,
			rps: answered / result.duration,
			requests: answered,
			errors: result.errors,
			non2xx: result.non2xx,
			wrongAnswers,
			storeCallsAtEmulator: (await emulatorCalls()).filter((c) => c.at >= since).length,
			storeCallsByLimiter: (await limiterCalls()) - limiterBefore,
		};
	};
	console.log(`bench:load: (k) ${HUNDRED_REPLAYS} replays of 100 Google purchases, answered from the ledger, then asking Google every time`);
	const ledger = await run(SAMPLE_APP.id, SAMPLE_APP.apiKey);
	const ask = await run(ASK_APP, ASK_APP_KEY);
	return { ledger, ask, replayRps: median(rounds.map((r) => r.replay?.rps ?? Number.NaN)) };
}

function report(
	rounds: Record<CaseName, CaseRun>[],
	webhookRounds: { none: CaseRun; three: CaseRun }[],
	callsPerNotification: Partial<Record<Delivery["store"], { calls: number; tokens: number; sampled: number }>>,
	hundred?: { ledger: HundredRun; ask: HundredRun; replayRps: number },
): void {
	const perRound = (f: (run: Record<CaseName, CaseRun>) => number) => rounds.map(f);
	const has = (...names: CaseName[]) => names.every((name) => CASES.includes(name));
	const ratios: Record<string, number[]> = {};
	for (const name of ["replay", "fresh", "google", "peer", "notify_apple", "notify_google", "access_one", "access_many"] as const) {
		if (has(name)) ratios[`${name}_vs_health`] = perRound((r) => r[name].rps / r.health.rps);
	}
	for (const name of ["replay", "fresh"] as const) if (has(name, "peer")) ratios[`${name}_vs_peer`] = perRound((r) => r[name].rps / r.peer.rps);
	if (has("access_one", "access_many")) ratios.access_many_vs_one = perRound((r) => r.access_many.rps / r.access_one.rps);
	// Latency, not throughput: the grant's answer with three webhook endpoints ÷ with none (p50, one at a time).
	if (webhookRounds.length > 0) ratios.webhooks3_vs_none_p50 = webhookRounds.map((r) => r.three.p50 / r.none.p50);
	const latencyRatios = Object.fromEntries(
		CASES.filter((name) => name !== "health").map((name) => [
			name,
			{ p50_vs_health: spread(perRound((r) => r[name].p50 / r.health.p50)), p99_vs_health: spread(perRound((r) => r[name].p99 / r.health.p99)) },
		]),
	);
	const errorsOf = (run: CaseRun) => run.errors + run.non2xx + run.wrongAnswers;
	const totalErrors =
		rounds.reduce((sum, r) => sum + CASES.reduce((s, name) => s + errorsOf(r[name]), 0), 0) + webhookRounds.reduce((sum, r) => sum + errorsOf(r.none) + errorsOf(r.three), 0);
	const totalRequests =
		rounds.reduce((sum, r) => sum + CASES.reduce((s, name) => s + r[name].requests, 0), 0) + webhookRounds.reduce((sum, r) => sum + r.none.requests + r.three.requests, 0);

	console.log("");
	console.log(`${"case".padEnd(60)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"errors".padStart(8)}${"non-2xx".padStart(9)}${"false".padStart(7)}${"CPU ms/req".padStart(12)}`);
	const perCase = Object.fromEntries(
		CASES.map((name) => {
			const runs = rounds.map((r) => r[name]);
			const cpu = runs.map((run) => run.cpuMs).filter((value): value is number => value !== undefined);
			const summary = {
				cpuMsPerRequest: cpu.length > 0 ? median(cpu) : undefined,
				rps: median(runs.map((run) => run.rps)),
				p50: median(runs.map((run) => run.p50)),
				p99: median(runs.map((run) => run.p99)),
				requests: runs.reduce((s, run) => s + run.requests, 0),
				errors: runs.reduce((s, run) => s + run.errors, 0),
				non2xx: runs.reduce((s, run) => s + run.non2xx, 0),
				wrongAnswers: runs.reduce((s, run) => s + run.wrongAnswers, 0),
				statuses: runs.reduce<Record<string, number>>((all, run) => {
					for (const [status, count] of Object.entries(run.statuses)) all[status] = (all[status] ?? 0) + count;
					return all;
				}, {}),
			};
			console.log(
				`${LABELS[name].padEnd(60)}${summary.rps.toFixed(0).padStart(9)}${summary.p50.toFixed(1).padStart(9)}${summary.p99.toFixed(1).padStart(9)}${String(summary.errors).padStart(8)}${String(summary.non2xx).padStart(9)}${String(summary.wrongAnswers).padStart(7)}${(summary.cpuMsPerRequest === undefined ? "n/a" : summary.cpuMsPerRequest.toFixed(2)).padStart(12)}`,
			);
			return [name, summary];
		}),
	);
	if (webhookRounds.length > 0) {
		for (const app of ["none", "three"] as const) {
			const runs = webhookRounds.map((r) => r[app]);
			console.log(
				`${`(j) /verify one at a time, fresh JWS, ${app === "none" ? "no webhook endpoint" : "3 webhook endpoints"}`.padEnd(60)}${median(runs.map((x) => x.rps)).toFixed(0).padStart(9)}${median(runs.map((x) => x.p50)).toFixed(1).padStart(9)}${median(runs.map((x) => x.p99)).toFixed(1).padStart(9)}${String(runs.reduce((n, x) => n + x.errors, 0)).padStart(8)}${String(runs.reduce((n, x) => n + x.non2xx, 0)).padStart(9)}${String(runs.reduce((n, x) => n + x.wrongAnswers, 0)).padStart(7)}`,
			);
		}
	}
	// Targets: at least (≥) for throughput ratios, at most (≤) for the latency ratio.
	const targets: Record<string, [">=" | "<=", number]> = { replay_vs_health: [">=", 0.6], fresh_vs_health: [">=", 0.3], access_many_vs_one: [">=", 0.5], webhooks3_vs_none_p50: ["<=", 1.1] };
	console.log("");
	for (const [name, values] of Object.entries(ratios)) {
		const s = spread(values);
		const target = targets[name];
		const meets = target === undefined ? true : target[0] === ">=" ? s.median >= target[1] : s.median <= target[1];
		const verdict = target === undefined ? "" : `  (target ${target[0] === ">=" ? "≥" : "≤"} ${target[1]}: ${meets ? "meets target" : "MISSES target"})`;
		console.log(`load.${name.padEnd(22)} ${s.median.toFixed(2)}×  (rounds ${s.min.toFixed(2)}–${s.max.toFixed(2)}, n=${s.n})${verdict}`);
	}
	const notificationFigures: Record<string, number> = {};
	for (const [store, name] of [["app_store", "notify_apple"], ["google_play", "notify_google"]] as const) {
		const sample = callsPerNotification[store];
		if (!sample || !has(name)) continue;
		const cpu = rounds.map((r) => r[name].cpuMs).filter((value): value is number => value !== undefined);
		const label = store === "app_store" ? "apple" : "google";
		notificationFigures[`notification_${label}_store_calls`] = round(sample.calls / sample.sampled);
		if (cpu.length > 0) notificationFigures[`notification_${label}_cpu_us`] = Math.round(median(cpu) * 1000);
		console.log(
			`load.notification_${label}: ${cpu.length > 0 ? `${Math.round(median(cpu) * 1000)} µs CPU per notification (service and emulator), ` : ""}${(sample.calls / sample.sampled).toFixed(2)} store calls per notification about its purchase and ${sample.tokens} access tokens, over ${sample.sampled} delivered one by one`,
		);
	}
	console.log(`load.errors               ${totalErrors} in ${totalRequests} requests (connection errors, timeouts, non-2xx and wrong answers; target 0)`);
	// The same comparison in CPU time per request, round by round: what each case costs the processes serving it,
	// whoever else wants the machine's cores (the service is one workerd thread, so this bounds its throughput).
	const cpuRatios: Record<string, number[]> = {};
	for (const name of ["replay", "fresh", "google", "peer", "notify_apple", "notify_google", "access_one", "access_many"] as const) {
		if (!has(name) || rounds.some((r) => r[name].cpuMs === undefined || r.health.cpuMs === undefined)) continue;
		cpuRatios[`${name}_vs_health`] = perRound((r) => r.health.cpuMs! / r[name].cpuMs!);
	}
	if (Object.keys(cpuRatios).length > 0) {
		console.log("in CPU time per request ((a)'s ÷ the case's, so that above 1 means cheaper than /health):");
		for (const [name, values] of Object.entries(cpuRatios)) {
			const s = spread(values);
			console.log(`load.cpu.${name.padEnd(16)} ${s.median.toFixed(2)}×  (rounds ${s.min.toFixed(2)}–${s.max.toFixed(2)}, n=${s.n})`);
		}
	}
	if (totalErrors > 0) process.exitCode = 1;
	if (!ALL_CHOSEN) {
		console.log("\na subset of the cases (BENCH_LOAD_CASES): bench/results.json left as it was");
		return;
	}
	if (hundred) {
		console.log(`\n(k) ${HUNDRED_REPLAYS} /verify replays of 100 Google purchases (autocannon, ${CONNECTIONS} connections):`);
		for (const [label, r] of [["answered from the ledger", hundred.ledger], ["asking Google every time (freshness 0)", hundred.ask]] as const) {
			console.log(
				`  ${label.padEnd(40)} ${Math.round(r.rps)} req/s, store calls ${r.storeCallsAtEmulator} at the emulator / ${r.storeCallsByLimiter} by the limiter (${(r.storeCallsAtEmulator / r.requests).toFixed(4)} per verification), errors ${r.errors}, non-2xx ${r.non2xx}, false ${r.wrongAnswers}`,
			);
		}
		console.log(`  beside (b), one App Store JWS replayed: ${Math.round(hundred.replayRps)} req/s (median of the rounds)`);
	}
	const figures = {
		...Object.fromEntries(Object.entries(ratios).map(([name, values]) => [name, round(median(values))])),
		...notificationFigures,
		...(hundred
			? {
					google100_store_calls: hundred.ledger.storeCallsAtEmulator,
					google100_calls_per_verification: round(hundred.ledger.storeCallsAtEmulator / hundred.ledger.requests),
					google100_ask_calls_per_verification: round(hundred.ask.storeCallsAtEmulator / hundred.ask.requests),
					google100_vs_replay: round(hundred.ledger.rps / hundred.replayRps),
					google100_vs_ask: round(hundred.ledger.rps / hundred.ask.rps),
				}
			: {}),
		errors: totalErrors + (hundred ? hundred.ledger.errors + hundred.ledger.non2xx + hundred.ledger.wrongAnswers + hundred.ask.errors + hundred.ask.non2xx + hundred.ask.wrongAnswers : 0),
	};
	writeSection("load", figures, {
		date: new Date().toISOString(),
		node: process.version,
		harness: "Miniflare (workerd), wrangler deploy --dry-run bundle, wrangler.toml bindings, on-disk D1 and Durable Object storage",
		rounds: ROUNDS,
		secondsPerCase: SECONDS,
		connections: CONNECTIONS,
		requests: totalRequests,
		spread: Object.fromEntries(Object.entries(ratios).map(([name, values]) => [name, spread(values)])),
		cpuRatios: Object.fromEntries(Object.entries(cpuRatios).map(([name, values]) => [name, spread(values)])),
		latencyRatios,
		cases: perCase,
		webhooks: webhookRounds.length === 0 ? undefined : { requestsPerRound: WEBHOOK_REQUESTS, p50: { none: median(webhookRounds.map((r) => r.none.p50)), three: median(webhookRounds.map((r) => r.three.p50)) }, p99: { none: median(webhookRounds.map((r) => r.none.p99)), three: median(webhookRounds.map((r) => r.three.p99)) } },
		notificationsPerRound: NOTIFICATIONS,
		...(hundred ? { google100: hundred } : {}),
	});
	console.log("\nwrote bench/results.json");
}

interface Targets {
	service: string;
	peer: string;
	replayBody: string;
	googleBody: string;
	pool: Pool<string>;
	notifications: Record<Delivery["store"], Pool<Delivery>>;
}

interface CaseRequest {
	url: string;
	request: import("autocannon").Request;
	/** Whether a 2xx answer is the right one. */
	expect: (body: string) => boolean;
}

function caseRequest(name: CaseName, t: Targets): CaseRequest {
	const json = { "content-type": "application/json" };
	const isTrue = (body: string) => body === TRUE;
	switch (name) {
		case "health":
			return { url: t.service, request: { method: "GET", path: "/health" }, expect: (body) => body.startsWith('{"status":"ok"') };
		case "replay":
			return { url: t.service, request: { method: "POST", path: "/verify", headers: json, body: t.replayBody }, expect: isTrue };
		case "google":
			return { url: t.service, request: { method: "POST", path: "/verify", headers: json, body: t.googleBody }, expect: isTrue };
		case "peer":
			return { url: t.peer, request: { method: "POST", path: "/verify", headers: json, body: t.replayBody }, expect: isTrue };
		case "fresh":
			return {
				url: t.service,
				request: {
					method: "POST",
					path: "/verify",
					headers: json,
					body: t.replayBody,
					setupRequest: (request) => ({ ...request, body: t.pool.next() }),
				},
				expect: isTrue,
			};
		case "notify_apple":
		case "notify_google": {
			const pool = t.notifications[name === "notify_apple" ? "app_store" : "google_play"];
			return {
				url: t.service,
				request: {
					method: "POST",
					path: "/",
					setupRequest: (request) => {
						const delivery = pool.next();
						return { ...request, path: delivery.path, headers: delivery.headers, body: delivery.body };
					},
				},
				expect: acceptedNotification,
			};
		}
		case "access_one":
		case "access_many": {
			const user = name === "access_one" ? ACCESS_ONE : ACCESS_MANY;
			return {
				url: t.service,
				request: { method: "GET", path: `/v1/users/${user}/access/premium`, headers: { authorization: `Bearer ${SAMPLE_APP.apiKey}` } },
				expect: (body) => body.includes('"access":true'),
			};
		}
	}
}

function addDefined(sum: number, value: number | undefined): number | undefined {
	return value === undefined ? undefined : sum + value;
}

/**
 * One case for `seconds` at CONNECTIONS connections (a notification case: NOTIFICATIONS requests, or a tenth of that
 * in a warm-up, at least one per connection); every answer is checked.
 */
async function runCase(target: CaseRequest & { cpu: () => number | undefined; name: CaseName }, seconds: number): Promise<CaseRun> {
	const before = target.cpu();
	// autocannon needs at least one request per connection.
	const amount = NOTIFY_CASES.has(target.name) ? Math.max(CONNECTIONS, seconds === SECONDS ? NOTIFICATIONS : Math.ceil(NOTIFICATIONS / 10)) : undefined;
	const run = await runAutocannon(target, seconds, { connections: CONNECTIONS, amount });
	// What the requests set off after their answers (events handed on, the queue consumer) belongs to this case,
	// and must not run into the next case's time: wait until the processes are idle, counting the CPU they spend.
	const settled = await settle(target.cpu);
	const after = target.cpu();
	const counted = before === undefined || after === undefined || run.requests === 0 ? run : { ...run, cpuMs: (after - before) / 1e6 / run.requests };
	return { ...counted, settleMs: settled };
}

/** Milliseconds until `cpu` (the processes serving a case) has been idle for a moment: below 5 % of one core. */
async function settle(cpu: () => number | undefined): Promise<number> {
	const start = performance.now();
	let last = cpu();
	if (last === undefined) return 0;
	for (;;) {
		await new Promise((resolvePromise) => setTimeout(resolvePromise, SETTLE_INTERVAL_MS));
		const now = cpu();
		if (now === undefined) return performance.now() - start;
		if ((now - last) / 1e6 < SETTLE_INTERVAL_MS * 0.05) return performance.now() - start;
		if (performance.now() - start > SETTLE_MAX_MS) {
			console.warn(`bench:load: the service was still busy ${SETTLE_MAX_MS / 1000} s after a case; going on`);
			return performance.now() - start;
		}
		last = now;
	}
}

/** autocannon for `seconds`, or for `amount` requests when given. */
function runAutocannon(target: CaseRequest, seconds: number, load: { connections: number; amount?: number | undefined }): Promise<CaseRun> {
	let wrongAnswers = 0;
	return new Promise((resolvePromise, reject) => {
		autocannon(
			{
				url: target.url,
				connections: load.connections,
				...(load.amount === undefined ? { duration: seconds } : { amount: load.amount }),
				timeout: 30,
				requests: [
					{
						...target.request,
						onResponse: (status, body) => {
							if (status >= 200 && status < 300 && !target.expect(body)) wrongAnswers++;
						},
					},
				],
			},
			(error, result: Result) => {
				if (error) return reject(error);
				const answered = result["2xx"] + result.non2xx;
				resolvePromise({
					rps: answered / result.duration,
					p50: result.latency.p50,
					p99: result.latency.p99,
					requests: answered,
					errors: result.errors,
					non2xx: result.non2xx,
					wrongAnswers,
					statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, Number(count)])),
				});
			},
		);
	});
}

/**
 * wrangler.toml's bindings (D1, the claims' and users' Durable Objects on SQLite, the events queue and its
 * consumer, the rate limiters) as wrangler itself
 * translates them for Miniflare. The rate limits are lifted: this measures throughput, not the limiter, which
 * still runs on every /verify.
 */
function serviceWorkerOptions(): Record<string, unknown> {
	// wrangler warns that the APPS_CONFIG secret is missing unless it finds one; the real one is a binding below.
	process.env.APPS_CONFIG = "{}";
	const { workerOptions } = unstable_getMiniflareWorkerOptions("wrangler.toml") as { workerOptions: Record<string, unknown> };
	delete process.env.APPS_CONFIG;
	const ratelimits = Object.fromEntries(
		Object.entries((workerOptions.ratelimits ?? {}) as Record<string, { simple: { limit: number; period: number } }>).map(([name, limiter]) => [
			name,
			{ ...limiter, simple: { ...limiter.simple, limit: 1_000_000_000 } },
		]),
	);
	const { compatibilityDate, compatibilityFlags, d1Databases, durableObjects, queueProducers, queueConsumers } = workerOptions;
	return { compatibilityDate, compatibilityFlags, d1Databases, durableObjects, queueProducers, queueConsumers, ratelimits };
}

async function buildService(): Promise<string> {
	const outdir = `${OUT}/service`;
	rmSync(outdir, { recursive: true, force: true });
	const wrangler = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir], { encoding: "utf8", env: { ...process.env, CI: "true" } });
	if (wrangler.status !== 0) throw new Error(`wrangler deploy --dry-run failed: ${(wrangler.stderr || wrangler.stdout).trim().split("\n").slice(-5).join("\n")}`);
	const main = readdirSync(outdir)
		.filter((file) => file.endsWith(".js"))
		.sort((a, b) => statSync(join(outdir, b)).size - statSync(join(outdir, a)).size)[0];
	if (!main) throw new Error(`wrangler deploy --dry-run wrote no .js to ${outdir}`);
	return join(outdir, main);
}

/** migrations/ applied as wrangler and the test pool apply them, recorded in d1_migrations (which /health reads). */
async function applyMigrations(db: Awaited<ReturnType<Miniflare["getD1Database"]>>): Promise<void> {
	await db.prepare("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)").run();
	for (const migration of await readD1Migrations("migrations")) {
		await db.batch([...migration.queries.map((query) => db.prepare(query)), db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(migration.name)]);
	}
}

async function startPeer(port: number, root: string): Promise<ChildProcess> {
	const child = spawn(process.execPath, ["bench/peer.ts", String(port), root, APPLE_SAMPLE.bundleId, String(APPLE_SAMPLE.appAppleId)], { stdio: ["ignore", "pipe", "inherit"] });
	await new Promise<void>((resolvePromise, reject) => {
		const timer = setTimeout(() => reject(new Error("the peer did not start within 30 s")), 30_000);
		child.once("exit", (code) => reject(new Error(`the peer exited (${code})`)));
		child.stdout!.on("data", (chunk: Buffer) => {
			if (chunk.toString().includes("listening")) {
				clearTimeout(timer);
				resolvePromise();
			}
		});
	});
	return child;
}

function stopProcess(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
	return new Promise((resolvePromise) => {
		const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
		child.once("exit", () => {
			clearTimeout(timer);
			resolvePromise();
		});
		child.kill("SIGTERM");
	});
}

async function expectAnswer(url: string, body: string | undefined, ok: (status: number, text: string) => boolean, what: string): Promise<void> {
	const deadline = Date.now() + 30_000;
	for (;;) {
		let status = 0;
		let text = "";
		try {
			const response = await fetch(url, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body });
			status = response.status;
			text = await response.text();
			if (ok(status, text)) return;
		} catch (error) {
			text = String(error);
		}
		if (Date.now() > deadline) throw new Error(`${what} answered ${status} ${text.slice(0, 300)}`);
		await new Promise((r) => setTimeout(r, 250));
	}
}

/** Ports nothing listens on now: all asked of the system at once (so they differ), then released for the workers. */
async function freePorts(count: number): Promise<number[]> {
	const servers = await Promise.all(
		Array.from(
			{ length: count },
			() =>
				new Promise<ReturnType<typeof createServer>>((resolvePromise, reject) => {
					const server = createServer();
					server.on("error", reject);
					server.listen(0, HOST, () => resolvePromise(server));
				}),
		),
	);
	const ports = servers.map((server) => {
		const address = server.address();
		return typeof address === "object" && address ? address.port : 0;
	});
	await Promise.all(servers.map((server) => new Promise((resolvePromise) => server.close(resolvePromise))));
	if (ports.some((port) => port === 0 || port === 8787 || port === 8788)) throw new Error(`unusable ports ${ports.join(", ")}; run again`);
	return ports;
}

// Last, so that every declaration above (classes included) is initialized.
try {
	await main();
} catch (error) {
	console.error(`bench:load failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
	process.exitCode = 1;
} finally {
	await cleanUp();
}
