-- One transfer per transaction, no explicit lock: one UPDATE moves both rows (in index order,
-- so no deadlocks) and the CHECK (balance >= 0) refuses an overdraft, all or nothing.
\set a random(1, :accounts)
\set b random(1, :accounts)
\set amount random(1, 10000)
BEGIN;
UPDATE baseline.accounts SET balance = balance + CASE WHEN id = :a THEN -(:amount::numeric) ELSE :amount::numeric END WHERE id IN (:a, :b);
INSERT INTO baseline.transfers (debit, credit, amount) VALUES (:a, :b, :amount);
END;
