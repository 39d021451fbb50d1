-- The check Picket shows on a pull request's head for each PR scan (GitHub: the check run
-- `Picket`). The control plane owns its queued, in-progress and fail-open states; the worker
-- completes it with the scan's result (docs/architecture.md, "Pull requests"). What the check
-- should show is computed by picket-core::check::wanted from the scan; `shown` is what the
-- provider last confirmed, and only moves forward.
CREATE TABLE pr_checks (
    scan_id         uuid PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- The provider's id of the check, once created.
    check_run_id    text CHECK (length(check_run_id) BETWEEN 1 AND 100),
    -- picket-core CheckPhase; NULL until the check exists.
    shown           text CHECK (shown IN ('queued', 'in_progress', 'reported', 'failed_open',
                                          'superseded', 'cancelled')),
    -- The org's fail-open deadline: queued_at + pr_scan_timeout_secs.
    fail_open_at    timestamptz NOT NULL,
    -- The worker completed the check with its result (or began its feedback late and left the
    -- check alone).
    reported_at     timestamptz,
    -- Retry bookkeeping of the control plane's loop: when it may look again, how many provider
    -- calls failed in a row, and the last failure's code (never a credential).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    failures        integer NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((shown IS NULL) OR (check_run_id IS NOT NULL))
);
-- The loop's walk: checks that may still move (not completed), soonest first.
CREATE INDEX pr_checks_open ON pr_checks (next_attempt_at)
    WHERE shown IS NULL OR shown IN ('queued', 'in_progress');
