-- Anonymous peer review and discussions run until consensus.
-- A reviewer's message: the labels it saw and the ranking read from it (JSON; '' otherwise).
ALTER TABLE messages ADD COLUMN review TEXT NOT NULL DEFAULT '';
-- A judge's message: its verdict, 'yes' or 'no' ('' otherwise, or when none was given).
ALTER TABLE messages ADD COLUMN consensus TEXT NOT NULL DEFAULT '';
-- A review round: the number of the round it reviewed (0 otherwise).
ALTER TABLE rounds ADD COLUMN reviewed_round INTEGER NOT NULL DEFAULT 0;
-- What the last run until consensus concluded ('', 'consensus', 'no_consensus'), and in which round.
ALTER TABLE discussions ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE discussions ADD COLUMN consensus_round INTEGER NOT NULL DEFAULT 0;
