-- Lessons and the invites issued for them. Times are Unix seconds (UTC).
CREATE TABLE lessons (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT    NOT NULL,
    subject      TEXT    NOT NULL DEFAULT '',
    grade        TEXT    NOT NULL DEFAULT '',
    mode         TEXT    NOT NULL CHECK (mode IN ('delivery', 'famous_teacher', 'network')),
    state        TEXT    NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'live', 'ended')),
    scheduled_at INTEGER,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER
);

-- One row per join token handed out, keyed by the token's `jti`, so tokens can be listed and
-- revoked later without changing their format.
CREATE TABLE invites (
    jti        TEXT    PRIMARY KEY NOT NULL,
    lesson_id  INTEGER NOT NULL REFERENCES lessons (id),
    role       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX invites_by_lesson ON invites (lesson_id);
