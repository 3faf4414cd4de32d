-- Migration number: 0005 	 The console and KPIs: every event kept (a purchase's timeline), counts by day, and the indexes the
-- console's pages and KPI queries read through.

-- Every event a claim reported (src/events/model.ts), once: recorded by the events queue's consumer, which may see an
-- event more than once. A purchase's timeline, beside its store notifications.
CREATE TABLE events (
	id TEXT PRIMARY KEY,                  -- the event's id (the webhook-id)
	app_id TEXT NOT NULL,
	store TEXT NOT NULL,
	claim TEXT NOT NULL,                  -- the claim's key: the transaction id, or the subscription id
	transaction_id TEXT NOT NULL,
	type TEXT NOT NULL,                   -- purchase.granted, subscription.renewed, ...
	user_id TEXT,                         -- the owner after the change
	environment TEXT NOT NULL,
	at INTEGER NOT NULL,                  -- ms: when it happened here
	payload TEXT NOT NULL                 -- the event, JSON
);
CREATE INDEX events_by_claim ON events (store, claim, at);

-- Counts by day (UTC) per app, store, environment and metric, kept as events are recorded and refusals answered: what
-- the KPI page reads, a few rows a day however many purchases there are.
CREATE TABLE daily_counts (
	app_id TEXT NOT NULL,
	day TEXT NOT NULL,                    -- YYYY-MM-DD
	store TEXT NOT NULL,
	environment TEXT NOT NULL,            -- Production | Sandbox; '' for refusals of evidence that named none
	metric TEXT NOT NULL,                 -- new_purchase | renewal | refund | revocation | refusal
	dimension TEXT NOT NULL DEFAULT '',   -- the currency (new_purchase, renewal, refund), the refusal code, store | support (revocation)
	count INTEGER NOT NULL DEFAULT 0,
	amount INTEGER NOT NULL DEFAULT 0,    -- milli-units of the currency in `dimension`, where the store states prices
	PRIMARY KEY (app_id, day, store, environment, metric, dimension)
) WITHOUT ROWID;

-- Until when a claimed auto-renewing subscription gives access (its period's end, or grace's), or when a refund, a
-- revocation or a replacement ended it; NULL for anything else. Active subscriptions on a day are those with
-- purchased_at <= the day's end < active_until.
ALTER TABLE purchases ADD COLUMN active_until INTEGER GENERATED ALWAYS AS (
	CASE
		WHEN kind <> 'subscription' OR user_id IS NULL OR state = 'pending' OR expires_at IS NULL THEN NULL
		WHEN state IN ('refunded', 'revoked', 'superseded') THEN MIN(as_of, MAX(expires_at, COALESCE(grace_expires_at, 0)))
		ELSE MAX(expires_at, COALESCE(grace_expires_at, 0))
	END
) VIRTUAL;
CREATE INDEX purchases_active_until ON purchases (app_id, environment, active_until, purchased_at, store) WHERE active_until IS NOT NULL;
CREATE INDEX purchases_subscription_starts ON purchases (app_id, environment, purchased_at, active_until, store) WHERE active_until IS NOT NULL;

