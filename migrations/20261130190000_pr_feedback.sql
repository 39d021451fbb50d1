-- A PR scan's feedback (docs/architecture.md, "Pull requests"). The worker begins its feedback
-- (fenced by its lease) by handing over what it plans from, posts the comments with the
-- credential minted for its scan, and says when they are done; the control plane's loop then
-- completes the check from the same input, and posts the comments itself when the worker could
-- not (rate limited past its deadline, killed after its results).
ALTER TABLE pr_checks
    -- picket-core FeedbackInput (its `existing` empty: comments are read back when posting).
    ADD COLUMN feedback jsonb,
    -- The result came after the fail-open deadline: comments only, the check stays as it is.
    ADD COLUMN late boolean NOT NULL DEFAULT false,
    -- The comments are on the PR (the worker said so, or the control plane posted them).
    ADD COLUMN comments_done_at timestamptz,
    -- What was posted: counts and API calls (picket-core FeedbackDone, without the attempt).
    ADD COLUMN feedback_outcome jsonb;

-- The loop's walk also takes a check whose feedback is begun and not finished, even one whose
-- check is completed already (a late result's comments).
DROP INDEX pr_checks_open;
CREATE INDEX pr_checks_open ON pr_checks (next_attempt_at)
    WHERE shown IS NULL OR shown IN ('queued', 'in_progress')
       OR (feedback IS NOT NULL AND comments_done_at IS NULL);
