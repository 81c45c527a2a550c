-- Chat messages of a lesson. The author is copied in (name, role, identity, participant id as
-- it was then) because participants live only as long as their connection; `identity` is the
-- join token's `sub`, stable across reconnections. Deleted messages are kept, marked, for the
-- lesson's record, and never shown again.
CREATE TABLE chat_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    lesson_id      INTEGER NOT NULL REFERENCES lessons (id),
    participant_id INTEGER NOT NULL,
    identity       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    audience       TEXT    NOT NULL DEFAULT 'everyone' CHECK (audience IN ('everyone', 'observers')),
    text           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0
);

-- History on join reads a lesson's newest messages.
CREATE INDEX chat_by_lesson ON chat_messages (lesson_id, id);
