-- no-transaction
-- The reconcile sweep (picket-scheduler `reconcile`): GitHub never retries a webhook delivery, so
-- the scheduler lists the open pull requests of enabled projects and queues a diff scan for every
-- head never scanned, within a per-installation API budget per sweep.
--
-- Run without sqlx's wrapping transaction because a new enum value cannot be used in the
-- transaction that adds it: the value is added and committed first, then the rest runs in a
-- transaction of its own. Every statement is idempotent, since sqlx records the migration only
-- after the file ran.

BEGIN;
-- A PR head the sweep found unscanned. Scanned exactly like a webhook's (`pull_request`); the
-- trigger tells the two apart.
ALTER TYPE scan_trigger ADD VALUE IF NOT EXISTS 'reconcile';
COMMIT;

BEGIN;
-- When the sweep last took this project's turn (listed its open pull requests, or failed
-- trying). NULL: never. The sweep walks each installation's projects oldest turn first, so the
-- projects a sweep's budget did not reach come first in the next one.
ALTER TABLE projects ADD COLUMN IF NOT EXISTS reconciled_at timestamptz;
CREATE INDEX IF NOT EXISTS projects_reconcile_turn ON projects (reconciled_at NULLS FIRST, id)
    WHERE disabled_reason IS NULL AND diff_scans_enabled AND provider_installation_id IS NOT NULL;

-- A pull request's head is scanned once, whether a webhook or the sweep queued it first (the
-- index of 20261130170000_github_webhooks, widened to the sweep's trigger).
DROP INDEX IF EXISTS scans_pr_head_once;
CREATE UNIQUE INDEX scans_pr_head_once ON scans (project_id, pr_number, commit_sha)
    WHERE trigger IN ('pull_request', 'reconcile') AND kind = 'diff'
      AND error_code IS DISTINCT FROM 'superseded';
COMMIT;
