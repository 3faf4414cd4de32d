-- Migration number: 0001 	 Purchase history: one row per store transaction, upserted on every grant and store notification.
CREATE TABLE purchases (
	store TEXT NOT NULL,                  -- google_play | app_store | amazon
	transaction_id TEXT NOT NULL,         -- Google purchase token, Apple transactionId
	app_id TEXT NOT NULL,
	user_id TEXT NOT NULL,                -- the owner recorded by the transaction's claim
	original_transaction_id TEXT,
	order_id TEXT,
	product_id TEXT NOT NULL,
	kind TEXT NOT NULL,                   -- consumable | non_consumable | subscription
	environment TEXT NOT NULL,            -- Production | Sandbox
	state TEXT NOT NULL,                  -- active | pending | canceled | expired | refunded | revoked | ...
	quantity INTEGER NOT NULL DEFAULT 1,
	purchased_at INTEGER NOT NULL,        -- ms since epoch
	expires_at INTEGER,                   -- ms since epoch, subscriptions
	raw TEXT NOT NULL,                    -- the store's answer, JSON
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (store, transaction_id)
);

-- A user's history, newest first, paginated by (purchased_at, transaction_id).
CREATE INDEX purchases_by_user ON purchases (app_id, user_id, purchased_at DESC, transaction_id DESC);
-- Support and refunds arrive by order id.
CREATE INDEX purchases_by_order ON purchases (store, order_id) WHERE order_id IS NOT NULL;
-- Subscription renewals and notifications arrive by original transaction id.
CREATE INDEX purchases_by_original ON purchases (store, original_transaction_id) WHERE original_transaction_id IS NOT NULL;
