-- Migration number: 0002 	 After the sale: ownerless rows (a notification about a purchase nobody has claimed yet), subscriptions
-- owned as a whole, grace periods, renewal intent, prices, the store's time of each statement; the notifications
-- received (a purchase's timeline) and how far each catch-up job got.

-- SQLite cannot drop NOT NULL in place: rebuild purchases with user_id nullable and the new columns.
CREATE TABLE purchases_v2 (
	store TEXT NOT NULL,                  -- google_play | app_store
	transaction_id TEXT NOT NULL,         -- Google purchase token, Apple transactionId
	app_id TEXT NOT NULL,
	user_id TEXT,                         -- the owner recorded by the claim; NULL until someone claims it
	original_transaction_id TEXT,         -- Apple's originalTransactionId
	subscription_id TEXT,                 -- auto-renewing subscriptions: Apple's originalTransactionId, Google's first token
	linked_transaction_id TEXT,           -- Google's linkedPurchaseToken: the purchase this one replaces
	order_id TEXT,
	product_id TEXT NOT NULL,
	kind TEXT NOT NULL,                   -- consumable | non_consumable | subscription
	environment TEXT NOT NULL,            -- Production | Sandbox
	state TEXT NOT NULL,                  -- active | canceled | expired | refunded | revoked | in_grace_period | on_hold | ...
	quantity INTEGER NOT NULL DEFAULT 1,
	purchased_at INTEGER NOT NULL,        -- ms since epoch
	expires_at INTEGER,                   -- ms since epoch, subscriptions
	grace_expires_at INTEGER,             -- ms since epoch, while in_grace_period
	will_renew INTEGER,                   -- 1 | 0 | NULL (the store did not say)
	price INTEGER,                        -- milli-units of currency, where the store states it
	currency TEXT,                        -- ISO 4217
	as_of INTEGER NOT NULL,               -- ms: when the store said what this row holds; older statements never overwrite
	raw TEXT NOT NULL,                    -- the store's answer, JSON
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (store, transaction_id)
);

INSERT INTO purchases_v2 (store, transaction_id, app_id, user_id, original_transaction_id, subscription_id, linked_transaction_id,
	order_id, product_id, kind, environment, state, quantity, purchased_at, expires_at, grace_expires_at, will_renew, price, currency,
	as_of, raw, created_at, updated_at)
SELECT store, transaction_id, app_id, user_id, original_transaction_id,
	CASE WHEN store = 'app_store' AND kind = 'subscription' AND expires_at IS NOT NULL THEN original_transaction_id
	     WHEN store = 'google_play' AND kind = 'subscription' THEN transaction_id END,
	CASE WHEN store = 'google_play' THEN original_transaction_id END,
	order_id, product_id, kind, environment, state, quantity, purchased_at, expires_at, NULL, NULL, NULL, NULL,
	updated_at, raw, created_at, updated_at
FROM purchases;

DROP TABLE purchases;
ALTER TABLE purchases_v2 RENAME TO purchases;
-- Google rows kept their linkedPurchaseToken in original_transaction_id before this migration.
UPDATE purchases SET original_transaction_id = NULL WHERE store = 'google_play';

-- A user's history, newest first, paginated by (purchased_at, transaction_id).
CREATE INDEX purchases_by_user ON purchases (app_id, user_id, purchased_at DESC, transaction_id DESC);
-- Support and refunds arrive by order id.
CREATE INDEX purchases_by_order ON purchases (store, order_id) WHERE order_id IS NOT NULL;
-- Apple's notifications and receipts name original transaction ids.
CREATE INDEX purchases_by_original ON purchases (store, original_transaction_id) WHERE original_transaction_id IS NOT NULL;
-- Every transaction of one subscription.
CREATE INDEX purchases_by_subscription ON purchases (store, subscription_id) WHERE subscription_id IS NOT NULL;

-- Every store notification applied, once: a purchase's timeline, and what the catch-up replays are checked against.
CREATE TABLE notifications (
	store TEXT NOT NULL,
	notification_id TEXT NOT NULL,        -- Apple's notificationUUID, Pub/Sub's messageId
	app_id TEXT NOT NULL,
	type TEXT NOT NULL,                   -- Apple's notificationType; Google's notification kind and type, e.g. subscription.SUBSCRIPTION_RENEWED
	subtype TEXT,
	transaction_id TEXT,                  -- the transaction it is about, if any
	subscription_id TEXT,
	environment TEXT,
	signed_at INTEGER NOT NULL,           -- ms: the store's time (Apple signedDate, Google eventTimeMillis)
	received_at INTEGER NOT NULL,
	source TEXT NOT NULL,                 -- push | catch_up
	payload TEXT NOT NULL,                -- the decoded notification, JSON
	PRIMARY KEY (store, notification_id)
);
CREATE INDEX notifications_by_transaction ON notifications (store, transaction_id, signed_at) WHERE transaction_id IS NOT NULL;
CREATE INDEX notifications_by_subscription ON notifications (store, subscription_id, signed_at) WHERE subscription_id IS NOT NULL;

-- How far each scheduled catch-up got, per app and source, so an outage resumes where it stopped.
CREATE TABLE sync_state (
	app_id TEXT NOT NULL,
	source TEXT NOT NULL,                 -- e.g. google.voided, apple.history.Production
	done_until INTEGER NOT NULL,          -- ms: everything before this was applied
	window_end INTEGER,                   -- the window in progress, if a run stopped inside it
	page_token TEXT,                      -- and the page it had reached
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (app_id, source)
);
