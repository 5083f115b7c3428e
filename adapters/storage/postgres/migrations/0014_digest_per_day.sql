-- One daily digest per day: its title names the day ("Daily digest 2026-11-30"), so two
-- service replicas (or a restart) making the same day's digest store it once.
CREATE UNIQUE INDEX IF NOT EXISTS reports_digest_title_key ON reports (title)
    WHERE kind = 'digest';
