-- Each scan's worker log (the Scan page's Logs tab, GET /api/v1/scans/{id}/logs): the lines a
-- worker sends while it runs (POST /api/v1/worker/scan/logs). Bounded: at most a fixed number of
-- lines per scan (picket-db `scan_logs::MAX_LINES_PER_SCAN`; later lines are counted, not kept)
-- and kept for a retention after the scan ends (the scheduler's reaper deletes older ones).
CREATE TABLE scan_log_lines (
    scan_id   uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    org_id    uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    attempt   integer NOT NULL CHECK (attempt >= 1),
    at        timestamptz NOT NULL,
    level     text NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message   text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
    PRIMARY KEY (scan_id, id)
);

-- Lines a scan's worker sent past the cap, per scan.
ALTER TABLE scans ADD COLUMN log_lines_dropped integer NOT NULL DEFAULT 0;
