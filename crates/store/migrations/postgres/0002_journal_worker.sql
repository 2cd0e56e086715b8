-- Which worker made each provider call (its name starts with its node's): with several
-- nodes on one database, the journal shows that one node at a time worked an operation.
-- Old rows predate it and stay NULL.
ALTER TABLE api_calls ADD COLUMN worker TEXT;
