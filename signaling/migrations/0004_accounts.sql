-- Accounts: schools and their classrooms, the people who sign in (teachers, operators, admins),
-- their sessions and one-time sign-in links; and which teacher owns each lesson.
-- Times are Unix seconds (UTC). Tokens are never stored, only their SHA-256 (hex).

CREATE TABLE schools (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- A school's classrooms by name, e.g. "Grade 5"; a remote classroom's invitation carries it.
CREATE TABLE classrooms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    school_id  INTEGER NOT NULL REFERENCES schools (id),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (school_id, name)
);

-- `username` is kept in lower case. `password_hash` is an Argon2id PHC string, NULL until the
-- account has chosen a password (it signs in with a one-time link first).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('teacher', 'operator', 'admin')),
    school_id     INTEGER REFERENCES schools (id),
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- `from_link`: opened by a one-time link, so it may set a password without the current one.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    from_link  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One-time sign-in links: a new account's first sign-in, or a forgotten password.
CREATE TABLE signin_links (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE INDEX signin_links_by_user ON signin_links (user_id);

-- The teacher who owns a lesson; NULL for lessons made with the API key (and those from
-- before accounts).
ALTER TABLE lessons ADD COLUMN teacher_id INTEGER REFERENCES users (id);
-- The teacher's schedule: their lessons in one state, in time order.
CREATE INDEX lessons_by_teacher ON lessons (teacher_id, state, scheduled_at);
CREATE INDEX lessons_by_state ON lessons (state, scheduled_at);

-- The registered classroom an invite was made for, if any.
ALTER TABLE invites ADD COLUMN classroom_id INTEGER REFERENCES classrooms (id);
