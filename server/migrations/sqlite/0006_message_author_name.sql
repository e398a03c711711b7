-- Who wrote a USER message (a group member, as the client named them).
ALTER TABLE messages ADD COLUMN author_name TEXT NOT NULL DEFAULT '';
