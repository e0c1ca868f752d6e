-- One transfer per transaction at SERIALIZABLE isolation, no locks: read the debit balance,
-- then move both rows; pgbench retries serialization failures.
\set a random(1, :accounts)
\set b random(1, :accounts)
\set amount random(1, 10000)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT balance FROM baseline.accounts WHERE id = :a;
UPDATE baseline.accounts SET balance = balance + CASE WHEN id = :a THEN -(:amount::numeric) ELSE :amount::numeric END WHERE id IN (:a, :b);
INSERT INTO baseline.transfers (debit, credit, amount) VALUES (:a, :b, :amount);
END;
