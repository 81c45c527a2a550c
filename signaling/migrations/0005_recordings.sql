-- Recording: each lesson's policy, and the recordings in the library. The media files live in
-- `DATA/library/<id>/` (see the `recorder` crate); this table is what the library searches.
-- Times are Unix seconds (UTC).

-- Whether the lesson records itself when it goes live. Existing lessons keep their old
-- behaviour (not recorded); new ones get their mode's default from the API.
ALTER TABLE lessons ADD COLUMN record INTEGER NOT NULL DEFAULT 0;

CREATE TABLE recordings (
    id            TEXT    PRIMARY KEY NOT NULL,
    lesson_id     INTEGER NOT NULL REFERENCES lessons (id),
    state         TEXT    NOT NULL
                  CHECK (state IN ('recording', 'complete', 'interrupted', 'failed')),
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    seekable      INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    -- JSON: {"main": "main.webm", "screen": null, "timeline": "timeline.jsonl", "thumbnail": ...}
    files         TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX recordings_by_lesson ON recordings (lesson_id);
CREATE INDEX recordings_by_start ON recordings (started_at);
