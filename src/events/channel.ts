import { DurableObject } from "cloudflare:workers";
import { findApp, loadConfig } from "../config/load";
import { entitlementsOf, type Entitlement } from "../entitlements";
import { userPurchasesOf } from "../ledger/history";
import { createLogger } from "../log";
import type { EventType, ServiceEvent } from "./model";

/**
 * One user of one app, live: the Durable Object that receives the events of that user's purchases, works out what
 * they do to the user's entitlements (entitlement.granted / entitlement.lost, handed on to webhooks), and pushes
 * access_granted / access_revoked to every socket the user's devices hold open. Sockets use the WebSocket
 * Hibernation API, so an idle connection costs nothing; the last 100 messages are kept for a device reconnecting
 * with ?since=<the last message id it saw>.
 */

export interface LiveMessage {
	/** The id of the event it came from: what a reconnecting device passes as ?since=. */
	id: string;
	type: "access_granted" | "access_revoked";
	at: number;
	/** The user's active entitlements after the change (ids). */
	entitlements: string[];
	productId: string;
	transactionId: string;
	store: string;
	/** The event that made it. */
	event: EventType;
}

const KEEP_MESSAGES = 100;
const KEEP_SEEN = 1000;

const SCHEMA = `
	CREATE TABLE IF NOT EXISTS message (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
	CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
	CREATE TABLE IF NOT EXISTS entitlement (id TEXT PRIMARY KEY, active INTEGER NOT NULL);
	CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, event TEXT NOT NULL);
`;

const GRANTING: ReadonlySet<EventType> = new Set(["purchase.granted", "purchase.restored", "subscription.renewed", "entitlement.granted"]);
const REVOKING: ReadonlySet<EventType> = new Set(["purchase.refunded", "purchase.revoked", "subscription.expired", "subscription.on_hold", "subscription.paused", "entitlement.lost"]);

/** The channel of one user of one app. */
export function channelName(appId: string, userId: string): string {
	return JSON.stringify([appId, userId]);
}

export class UserChannel extends DurableObject<Env> {
	readonly #sql: SqlStorage;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => this.#sql.exec(SCHEMA));
	}

	/**
	 * Takes a claim's events about this user's purchases (each once, however often they are handed over), works out
	 * the entitlement changes they make, and tells the user's sockets. Returns once all of it is stored; what goes on
	 * to the queue is retried from the alarm if the queue is unavailable.
	 */
	async publish(appId: string, userId: string, events: ServiceEvent[]): Promise<void> {
		// Events handed over before (a retry) need no D1 read.
		if (events.every((e) => this.#seen(e.id))) return;
		const entitlements = await this.#entitlements(appId, userId);
		// From here on, synchronous: which events are new (another hand-over of the same ones may have run during the
		// read), the entitlement snapshot and what it derives change together.
		const fresh = events.filter((e) => !this.#seen(e.id));
		if (fresh.length === 0) return;
		const now = Date.now();
		for (const e of fresh) this.#sql.exec(`INSERT OR IGNORE INTO seen (id, at) VALUES (?, ?)`, e.id, now);
		const derived: ServiceEvent[] = [];
		const basis = fresh.at(-1)!;
		for (const entitlement of entitlements ?? []) {
			const was = this.#sql.exec<{ active: number }>(`SELECT active FROM entitlement WHERE id = ?`, entitlement.id).toArray()[0]?.active === 1;
			if (was === entitlement.active) continue;
			this.#sql.exec(`INSERT INTO entitlement (id, active) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET active = excluded.active`, entitlement.id, entitlement.active ? 1 : 0);
			const event: ServiceEvent = { ...basis, id: crypto.randomUUID(), type: entitlement.active ? "entitlement.granted" : "entitlement.lost", at: now, userId, entitlement };
			derived.push(event);
			this.#sql.exec(`INSERT INTO outbox (id, event) VALUES (?, ?)`, event.id, JSON.stringify(event));
		}
		const active = (entitlements ?? []).filter((e) => e.active).map((e) => e.id);
		for (const e of [...fresh, ...derived]) {
			const message = this.#messageFor(e, userId, active);
			if (message) this.#tell(message);
		}
		this.#sql.exec(`DELETE FROM seen WHERE id NOT IN (SELECT id FROM seen ORDER BY at DESC LIMIT ?)`, KEEP_SEEN);
		await this.#flush();
	}

	/** A socket for one of the user's devices (the route has checked its token). `?since=` replays what it missed. */
	override async fetch(request: Request): Promise<Response> {
		const pair = new WebSocketPair();
		const [client, server] = [pair[0], pair[1]];
		this.ctx.acceptWebSocket(server);
		const since = new URL(request.url).searchParams.get("since");
		if (since) {
			const from = this.#sql.exec<{ seq: number }>(`SELECT seq FROM message WHERE id = ?`, since).toArray()[0]?.seq;
			// An id no longer kept (or never seen): everything kept, so the device misses as little as possible.
			const missed = this.#sql.exec<{ body: string }>(`SELECT body FROM message WHERE seq > ? ORDER BY seq`, from ?? 0).toArray();
			for (const m of missed) server.send(m.body);
		}
		return new Response(null, { status: 101, webSocket: client });
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		if (message === "ping") ws.send("pong");
	}

	override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
		ws.close(code === 1005 ? 1000 : code, "closing");
	}

	override async alarm(): Promise<void> {
		await this.#flush();
	}

	#seen(id: string): boolean {
		return this.#sql.exec(`SELECT 1 FROM seen WHERE id = ?`, id).toArray().length > 0;
	}

	/** The user's entitlements now (D1 already holds the change: the claim hands events over after writing it). */
	async #entitlements(appId: string, userId: string): Promise<Entitlement[] | undefined> {
		const loaded = loadConfig(this.env);
		const app = loaded.ok ? findApp(loaded.config, appId) : undefined;
		if (!app || Object.keys(app.entitlements).length === 0) return undefined;
		const products = [...new Set(Object.values(app.entitlements).flat())];
		return entitlementsOf(app, await userPurchasesOf(this.env.DB, appId, userId, products));
	}

	#messageFor(event: ServiceEvent, userId: string, active: string[]): LiveMessage | undefined {
		const base = { id: event.id, at: event.at, entitlements: active, productId: event.purchase.productId, transactionId: event.purchase.transactionId, store: event.store, event: event.type };
		if (event.type === "ownership.transferred") {
			if (event.ownership?.toUserId === userId) return { ...base, type: "access_granted" };
			if (event.ownership?.fromUserId === userId) return { ...base, type: "access_revoked" };
			return undefined;
		}
		if (GRANTING.has(event.type)) return { ...base, type: "access_granted" };
		if (REVOKING.has(event.type)) return { ...base, type: "access_revoked" };
		return undefined;
	}

	#tell(message: LiveMessage): void {
		const body = JSON.stringify(message);
		this.#sql.exec(`INSERT OR IGNORE INTO message (id, body) VALUES (?, ?)`, message.id, body);
		this.#sql.exec(`DELETE FROM message WHERE seq <= (SELECT MAX(seq) FROM message) - ?`, KEEP_MESSAGES);
		for (const ws of this.ctx.getWebSockets()) {
			try {
				ws.send(body);
			} catch {
				// A socket closing as we speak: it will reconnect with ?since=.
			}
		}
	}

	/** Hands derived events on to the queue (webhooks); what fails is retried from the alarm. */
	async #flush(): Promise<void> {
		const pending = this.#sql.exec<{ id: string; event: string }>(`SELECT id, event FROM outbox`).toArray();
		if (pending.length === 0) return;
		try {
			await this.env.EVENTS.sendBatch(pending.map((p) => ({ body: { kind: "event", event: JSON.parse(p.event) as ServiceEvent }, contentType: "json" as const })));
			for (const p of pending) this.#sql.exec(`DELETE FROM outbox WHERE id = ?`, p.id);
		} catch (err) {
			createLogger("channel").warn("events_not_queued", { count: pending.length, error: err });
			await this.ctx.storage.setAlarm(Date.now() + 10_000);
		}
	}
}
