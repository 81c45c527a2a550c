-- Participants a moderator removed from a lesson, by their join token's `sub` (the invite's
-- identity, the same on every reconnection). A join with that identity is refused for the
-- lesson's life; kept in the database so a restart does not forgive it.
CREATE TABLE removed_participants (
    lesson_id  INTEGER NOT NULL REFERENCES lessons (id),
    identity   TEXT    NOT NULL,
    removed_by TEXT    NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (lesson_id, identity)
);
