-- Fallbacks per seat: when the seat's model fails before its first token,
-- the next of these answers for it.
CREATE TABLE project_fallbacks (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    seat TEXT NOT NULL,
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (project_id, seat, position)
);

-- Why a message failed (a FailureReason's stored form), who answered when a
-- fallback did, the model's thinking kept apart from its answer, and the
-- time the call waited for a provider slot.
ALTER TABLE messages ADD COLUMN failure_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN answered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN queue_ms INTEGER NOT NULL DEFAULT 0;
