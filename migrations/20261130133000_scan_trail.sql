-- Issue 8: the scan's audit trail, the findings each scan reported, path ignores per project and
-- the org's switch for inline suppression. Additive only.

-- Whether `nosemgrep` comments suppress findings in the org's scans (suppressed findings are
-- stored `ignored` with the reason `nosemgrep`).
ALTER TABLE orgs ADD COLUMN inline_suppression boolean NOT NULL DEFAULT true;

-- The project's own path ignores (gitignore syntax, anchored at the repository root), applied
-- on top of the repository's .semgrepignore.
ALTER TABLE projects ADD COLUMN path_ignores text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(path_ignores) <= 100);

-- One row per attempt of a scan: where it ran (written by the scheduler before it launches the
-- environment) and what the worker did (written with its results or its failure).
CREATE TABLE scan_attempts (
    scan_id     uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    attempt     integer NOT NULL CHECK (attempt >= 1),
    -- The scan's org, copied for org-scoped reads (as scan_events).
    org_id      uuid NOT NULL,
    -- `kubernetes`, `sandbox` or `process`, and the environment's name.
    executor    text CHECK (length(executor) BETWEEN 1 AND 50),
    environment text CHECK (length(environment) BETWEEN 1 AND 253),
    launched_at timestamptz,
    -- The worker's trail (picket_core::protocol::ScanTrail): steps with start, duration and
    -- figures, engine and rule-pack versions, skipped files, ignore rules that applied.
    trail       jsonb,
    -- The step a failed attempt failed in.
    failed_step text CHECK (length(failed_step) BETWEEN 1 AND 100),
    PRIMARY KEY (scan_id, attempt)
);

-- What a finding was to the scan that reported it.
CREATE TYPE scan_finding_change AS ENUM (
    -- a full scan's finding
    'found',
    -- a diff scan's finding not at the merge base
    'new',
    -- a diff scan's finding at the merge base that the head no longer has
    'fixed'
);

-- The findings each scan reported, as that scan saw them (findings rows move on with later
-- scans; these do not). Secrets carry only their redacted form, as findings do.
CREATE TABLE scan_findings (
    scan_id         uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    org_id          uuid NOT NULL,
    fingerprint     text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    -- The stored finding (full scans: the branch's; diff scans: the PR head's new finding);
    -- none for a diff scan's `fixed` entries.
    finding_id      uuid REFERENCES findings (id) ON DELETE SET NULL,
    change          scan_finding_change NOT NULL,
    product         product NOT NULL,
    rule_id         text NOT NULL,
    path            text NOT NULL,
    start_line      integer NOT NULL CHECK (start_line >= 1),
    end_line        integer NOT NULL CHECK (end_line >= start_line),
    severity        severity NOT NULL,
    message         text NOT NULL,
    secret_redacted text,
    -- Covered by a `nosemgrep` comment.
    suppressed      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scan_id, fingerprint)
);
