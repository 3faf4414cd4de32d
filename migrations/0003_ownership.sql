-- Migration number: 0003 	 Entitlements and support: every ownership change audited, and a user's purchases found by product.

-- Every change of who owns a purchase: the first claim, a transfer on restore, a support transfer or revocation.
-- Written by the purchase's claim in the same batch as the purchase rows it changes.
CREATE TABLE ownership_audit (
	id TEXT PRIMARY KEY,                  -- unique per change
	store TEXT NOT NULL,
	claim_id TEXT NOT NULL,               -- the claim's key: the transaction id, or the subscription id
	transaction_id TEXT NOT NULL,         -- the transaction presented or named when it changed
	app_id TEXT NOT NULL,
	action TEXT NOT NULL,                 -- claim | restore_transfer | transfer | revoke
	from_user_id TEXT,
	to_user_id TEXT,
	actor TEXT NOT NULL,                  -- who did it: "user" (a claim), or the API key's id "api-key:<app>:<n>", never the key
	reason TEXT,
	at INTEGER NOT NULL
);
CREATE INDEX ownership_audit_by_claim ON ownership_audit (store, claim_id, at);

-- "What does this user have of these products?" in one index range: entitlements and access checks.
CREATE INDEX purchases_by_user_product ON purchases (app_id, user_id, product_id, expires_at);
