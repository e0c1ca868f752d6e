-- 100 transfers in one set-based statement, all or nothing: rows locked in id order, each
-- account updated once with its net change, every transfer inserted.
WITH batch AS (
    SELECT 1 + floor(random() * :accounts)::bigint AS debit, 1 + floor(random() * :accounts)::bigint AS credit,
           1 + floor(random() * 10000)::numeric AS amount
    FROM generate_series(1, 100)
), moves AS (
    SELECT debit AS id, -amount AS delta FROM batch UNION ALL SELECT credit, amount FROM batch
), net AS (
    SELECT id, sum(delta) AS delta FROM moves GROUP BY id
), locked AS (
    SELECT a.id FROM baseline.accounts a WHERE a.id IN (SELECT id FROM net) ORDER BY a.id FOR UPDATE
), moved AS (
    UPDATE baseline.accounts a SET balance = a.balance + n.delta FROM net n, (SELECT count(*) FROM locked) l
    WHERE a.id = n.id RETURNING a.id
)
INSERT INTO baseline.transfers (debit, credit, amount) SELECT debit, credit, amount FROM batch, (SELECT count(*) FROM moved) m;
