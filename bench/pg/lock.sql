-- One transfer per transaction: both rows locked in id order, then moved.
\set a random(1, :accounts)
\set b random(1, :accounts)
\set amount random(1, 10000)
BEGIN;
SELECT balance FROM baseline.accounts WHERE id IN (:a, :b) ORDER BY id FOR UPDATE;
UPDATE baseline.accounts SET balance = balance - :amount WHERE id = :a AND balance >= :amount;
UPDATE baseline.accounts SET balance = balance + :amount WHERE id = :b;
INSERT INTO baseline.transfers (debit, credit, amount) VALUES (:a, :b, :amount);
END;
