-- What each model call cost (or, until it ends, what it reserved), so
-- budgets hold across replicas and restarts.
CREATE TABLE spend (
    id TEXT PRIMARY KEY NOT NULL,
    principal TEXT NOT NULL,
    discussion_id TEXT NOT NULL,
    model TEXT NOT NULL,
    amount_usd REAL NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    time INTEGER NOT NULL
);
CREATE INDEX spend_by_principal ON spend (principal, time);
CREATE INDEX spend_by_discussion ON spend (discussion_id);
CREATE INDEX spend_by_model ON spend (model, settled, time);

-- One row per principal, updated by every reservation: the row lock
-- serialises concurrent check-and-reserve across replicas.
CREATE TABLE spend_principals (
    principal TEXT PRIMARY KEY NOT NULL,
    reservations INTEGER NOT NULL DEFAULT 0
);
