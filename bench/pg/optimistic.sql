-- One transfer per transaction with an optimistic version check: read both rows' versions,
-- then update each only if its version is unchanged. A lost race updates fewer rows, which
-- `retry_unless` turns into a serialization failure: the transaction rolls back and pgbench
-- retries it (--max-tries), as an application's retry loop would.
\set a random(1, :accounts)
\set b random(1, :accounts)
\set amount random(1, 10000)
BEGIN;
SELECT (SELECT version FROM baseline.accounts WHERE id = :a) AS va, (SELECT version FROM baseline.accounts WHERE id = :b) AS vb \gset
WITH moved AS (
    UPDATE baseline.accounts SET balance = balance + CASE WHEN id = :a THEN -(:amount::numeric) ELSE :amount::numeric END, version = version + 1
    WHERE (id = :a AND version = :va) OR (id = :b AND version = :vb) RETURNING id
)
SELECT baseline.retry_unless((SELECT count(*) FROM moved) = CASE WHEN :a = :b THEN 1 ELSE 2 END);
INSERT INTO baseline.transfers (debit, credit, amount) VALUES (:a, :b, :amount);
END;
