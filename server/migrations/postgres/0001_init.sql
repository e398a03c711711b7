CREATE TABLE projects (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    summarizer_model TEXT NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (owner, name)
);
CREATE INDEX projects_by_owner ON projects (owner, create_time, id);

CREATE TABLE project_models (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (project_id, position)
);

CREATE TABLE discussions (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    status TEXT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX discussions_by_project ON discussions (project_id, create_time, id);
CREATE INDEX discussions_by_owner ON discussions (owner, create_time, id);
CREATE INDEX discussions_by_status ON discussions (status);

CREATE TABLE rounds (
    discussion_id TEXT NOT NULL REFERENCES discussions (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    mode TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (discussion_id, number)
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    discussion_id TEXT NOT NULL REFERENCES discussions (id) ON DELETE CASCADE,
    round BIGINT NOT NULL,
    position BIGINT NOT NULL,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX messages_by_discussion ON messages (discussion_id, round, position);

CREATE TABLE events (
    discussion_id TEXT NOT NULL REFERENCES discussions (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    time BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    PRIMARY KEY (discussion_id, seq)
);
