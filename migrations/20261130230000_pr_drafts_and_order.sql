-- Draft pull requests and deliveries that arrive out of order (docs/github.md).
--
-- Draft PRs are scanned like any other; the org decides whether they get comments
-- (picket-core DraftFeedback: `full`, or `check_only`: the check, and no new comment). The
-- comments a quiet draft did not get are posted when the PR is marked ready for review, for the
-- head already scanned, without scanning it again.
ALTER TABLE orgs
    ADD COLUMN draft_feedback text NOT NULL DEFAULT 'full'
        CHECK (draft_feedback IN ('full', 'check_only'));
ALTER TABLE scans
    -- The PR was a draft (PR scans only; NULL for the rest). Cleared when the PR is marked
    -- ready for review.
    ADD COLUMN pr_draft boolean,
    -- The provider's last-update time of the PR in the delivery that queued the scan (GitHub
    -- `pull_request.updated_at`). A delivery older than the newest scan of its PR is stale: a
    -- late or redelivered `synchronize` must never supersede the scan of a newer head.
    ADD COLUMN pr_updated_at timestamptz;
ALTER TABLE pr_checks
    -- The feedback was finished for a quiet draft (no new comment); ready for review reopens it.
    ADD COLUMN quiet_draft boolean NOT NULL DEFAULT false;

-- Wake the control plane's check loop when a PR scan changes state (running: the check goes in
-- progress; an end: it completes), instead of waiting for its next look. The payload is the
-- scan's id: the loop itself makes that check due (picket-db `pr_checks::due_now`), so no
-- transaction that moves a scan ever waits on a check's row, which the loop holds while it
-- calls the provider.
CREATE FUNCTION pr_scans_notify_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('picket_pr_check', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER pr_scans_notify_state AFTER UPDATE OF state ON scans
    FOR EACH ROW WHEN (NEW.pr_number IS NOT NULL AND NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION pr_scans_notify_state();
