-- Operator reports (daily digest, learning report, shadow evaluation of a rule change):
-- kept so the inbox can show the latest of each kind and their history.
CREATE TABLE IF NOT EXISTS reports (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('digest', 'learning', 'shadow')),
    title       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    body        jsonb NOT NULL,
    html        text NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_kind_created ON reports (kind, created_at DESC, id DESC);
