-- A diff scan may carry its merge base when the caller knows it (a provider's compare API gives
-- it: GitHub's `merge_base_commit.sha`, GitLab's merge request `base_commit_sha`). The worker then
-- fetches the head and the merge base alone instead of deepening the history until it finds it.
ALTER TABLE scans ADD COLUMN merge_base_sha text;
ALTER TABLE scans ADD CONSTRAINT scans_merge_base_diff_only
    CHECK (kind = 'diff' OR merge_base_sha IS NULL);
