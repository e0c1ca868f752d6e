-- One transfer per round trip: a function call.
\set a random(1, :accounts)
\set b random(1, :accounts)
\set amount random(1, 10000)
SELECT baseline.transfer(:a, :b, :amount);
