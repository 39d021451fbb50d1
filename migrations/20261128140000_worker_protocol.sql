-- The worker protocol (issue #3): per-scan tokens, recorded results of each attempt, the findings
-- lifecycle's triage and secret columns. Additive only: new nullable columns, new tables.

-- A per-scan token (`pks_…`) is minted when a scan is claimed and stored as its SHA-256 only.
-- It is bound to the lease it was minted under: it authenticates only while `scan_token_lease`
-- is the scan's current `lease_token` and the scan is active, so a re-claim (new lease) or the
-- end of the scan (no lease) retires it even before a new token replaces the hash.
ALTER TABLE scans
    ADD COLUMN scan_token_hash  bytea CHECK (length(scan_token_hash) = 32),
    ADD COLUMN scan_token_lease uuid,
    ADD CONSTRAINT scans_scan_token_pair CHECK ((scan_token_hash IS NULL) = (scan_token_lease IS NULL));
-- Token lookup, over every scan ever given a token: a scan's results upload may be repeated
-- after the scan ended. Scans without a token take no entry.
CREATE UNIQUE INDEX scans_scan_token ON scans (scan_token_hash) WHERE scan_token_hash IS NOT NULL;

-- Findings: who triaged them, and for secrets a redacted form and a hash (never the value).
ALTER TABLE findings
    ADD COLUMN triaged_by      text,
    ADD COLUMN triaged_at      timestamptz,
    -- e.g. `AKIA…MPLE`: what may be shown.
    ADD COLUMN secret_redacted text CHECK (length(secret_redacted) BETWEEN 1 AND 200),
    -- SHA-256 of the secret value, to recognise one leaked value across findings.
    ADD COLUMN secret_hash     bytea CHECK (length(secret_hash) = 32);
-- NOT VALID: the two checks below hold for every row written from now on, without scanning (or
-- refusing to migrate over) rows written before.
-- An ignored finding says why.
ALTER TABLE findings ADD CONSTRAINT findings_triage_reason
    CHECK (status <> 'ignored' OR triage_reason IS NOT NULL) NOT VALID;
-- A secrets finding carries its redacted form and hash; no other finding carries either.
ALTER TABLE findings ADD CONSTRAINT findings_secret_redacted CHECK (
    CASE WHEN product = 'secrets' THEN secret_redacted IS NOT NULL AND secret_hash IS NOT NULL
         ELSE secret_redacted IS NULL AND secret_hash IS NULL END
) NOT VALID;

-- What each attempt of a scan uploaded, keyed by (scan, attempt): a repeated upload of the same
-- attempt finds its row and answers the same summary without writing anything.
CREATE TABLE scan_results (
    scan_id           uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    attempt           integer NOT NULL CHECK (attempt >= 1),
    -- The scan's org, copied for org-scoped reads (no foreign key of its own, as scan_events).
    org_id            uuid NOT NULL,
    -- SHA-256 of the upload (its canonical JSON): only the very same upload is a repeat.
    upload_sha256     bytea NOT NULL CHECK (length(upload_sha256) = 32),
    commit_sha        text NOT NULL,
    merge_base_sha    text,
    files_scanned     bigint NOT NULL CHECK (files_scanned >= 0),
    rules_run         bigint NOT NULL CHECK (rules_run >= 0),
    -- Findings in the upload; stored (diff scans keep only those new in the PR); first seen on
    -- the branch; and open findings the scan closed as fixed or removed.
    findings_reported bigint NOT NULL CHECK (findings_reported >= 0),
    findings_stored   bigint NOT NULL CHECK (findings_stored >= 0),
    findings_new      bigint NOT NULL CHECK (findings_new >= 0),
    findings_fixed    bigint NOT NULL CHECK (findings_fixed >= 0),
    findings_removed  bigint NOT NULL CHECK (findings_removed >= 0),
    -- The worker's step timings: [{"step": "clone", "millis": 812}, ...].
    steps             jsonb NOT NULL DEFAULT '[]',
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scan_id, attempt)
);
