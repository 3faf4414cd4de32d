-- Migration number: 0004 	 Webhook deliveries: every attempt's outcome, for the delivery log and redelivery.
CREATE TABLE webhook_deliveries (
	id TEXT PRIMARY KEY,                  -- <event id>:<endpoint position>
	app_id TEXT NOT NULL,
	endpoint TEXT NOT NULL,               -- the endpoint's URL (no secret in it)
	event_id TEXT NOT NULL,               -- sent as webhook-id: the same on every attempt
	event_type TEXT NOT NULL,
	store TEXT NOT NULL,
	transaction_id TEXT NOT NULL,
	user_id TEXT,
	status TEXT NOT NULL,                 -- pending | delivered | failed (retrying) | dead (gave up: in the dead-letter queue)
	attempts INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER,                  -- the endpoint's last HTTP status, if it answered
	last_error TEXT,
	payload TEXT NOT NULL,                -- the event, as sent
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_by_app ON webhook_deliveries (app_id, created_at DESC);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (app_id, status, created_at DESC);
CREATE INDEX webhook_deliveries_by_transaction ON webhook_deliveries (app_id, transaction_id, created_at DESC);
