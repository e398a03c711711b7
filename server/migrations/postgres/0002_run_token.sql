-- Which run holds a RUNNING discussion, so a run that lost it (stopped or
-- recovered elsewhere) can neither renew the lease nor end someone else's run.
ALTER TABLE discussions ADD COLUMN run_token TEXT NOT NULL DEFAULT '';
