-- Migration number: 0006 	 The audit trail says what came of a support action, the store's refusals included.

-- For a re-verification: "applied" (the store said something new), "unchanged", "refused: <code>" (the store no
-- longer vouches for the purchase) or "not asked: <why>" (what asking needs is not known). NULL for ownership
-- changes, which are their own outcome, and for entries written before this migration.
ALTER TABLE ownership_audit ADD COLUMN outcome TEXT;
