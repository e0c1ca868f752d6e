-- Plain-SQL baselines: the classic ways to keep balances right on PostgreSQL, with none of
-- Tally's extra work (no per-event results, idempotency, holds or history).
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
SET search_path = baseline;
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    balance numeric(39, 0) NOT NULL CHECK (balance >= 0),
    version bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
CREATE TABLE transfers (
    id bigserial PRIMARY KEY,
    debit bigint NOT NULL,
    credit bigint NOT NULL,
    amount numeric(39, 0) NOT NULL
);
INSERT INTO accounts (id, balance) SELECT n, 1000000000000 FROM generate_series(1, :accounts) AS n;

-- One round trip per transfer: the locking method inside a function.
CREATE FUNCTION transfer(debit_id bigint, credit_id bigint, amount numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM baseline.accounts WHERE id IN (debit_id, credit_id) ORDER BY id FOR UPDATE;
    UPDATE baseline.accounts SET balance = balance - amount WHERE id = debit_id AND balance >= amount;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE baseline.accounts SET balance = balance + amount WHERE id = credit_id;
    INSERT INTO baseline.transfers (debit, credit, amount) VALUES (debit_id, credit_id, amount);
    RETURN true;
END $$;
-- Turns a lost optimistic race into a serialization failure, which clients retry.
CREATE FUNCTION retry_unless(ok boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'a version moved under the transaction' USING ERRCODE = '40001';
    END IF;
END $$;
VACUUM ANALYZE accounts;
