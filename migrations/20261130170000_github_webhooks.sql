-- GitHub webhooks and connections: the delivery log, the installation a project came through and
-- why it is disabled, connection settings, and one pull-request scan per head.

-- Connection settings that are not secret. `follow_installations`: when the provider says an
-- installation gained repositories (GitHub `installation` created, `installation_repositories`
-- added), each becomes a project with its initial scan, without anyone adding it.
ALTER TABLE vcs_connections
    ADD COLUMN follow_installations boolean NOT NULL DEFAULT false;

-- The installation (GitHub App installation id) a project's repository is reached through, when
-- a webhook told us; and why the project is disabled, if it is. A project is enabled exactly when
-- `disabled_reason` is NULL: no scan of any kind is queued for a disabled project (its repository
-- is out of reach). Re-enabling (installation unsuspended, repository added again) clears it.
ALTER TABLE projects
    ADD COLUMN provider_installation_id text
        CHECK (length(provider_installation_id) BETWEEN 1 AND 100),
    ADD COLUMN disabled_reason text
        CHECK (disabled_reason IN ('installation_removed', 'installation_suspended', 'repository_removed')),
    ADD COLUMN disabled_at timestamptz,
    ADD CONSTRAINT projects_disabled_pair CHECK ((disabled_reason IS NULL) = (disabled_at IS NULL));
-- Installation events address every project of one installation.
CREATE INDEX projects_installation ON projects (connection_id, provider_installation_id)
    WHERE provider_installation_id IS NOT NULL;

-- A pull request's head is scanned once: a redelivery, or another event about the same head
-- (`reopened`, `ready_for_review`), finds this scan and queues nothing. A head whose scan was
-- superseded (the PR moved on, then came back to it) may be queued again.
CREATE UNIQUE INDEX scans_pr_head_once ON scans (project_id, pr_number, commit_sha)
    WHERE trigger = 'pull_request' AND kind = 'diff' AND error_code IS DISTINCT FROM 'superseded';
-- A pull request's active scans, to supersede them.
CREATE INDEX scans_pr_active ON scans (project_id, pr_number)
    WHERE kind = 'diff' AND state IN ('queued', 'claimed', 'running', 'reporting');

-- The delivery log, replacing the unused table of the foundation schema. One row per delivery a
-- connection received whose signature was valid (refused signatures write nothing), written in
-- the same transaction as what Picket did about it: a delivery whose transaction failed leaves no
-- row, so its redelivery is taken. The body is kept for troubleshooting for a limited time
-- (PICKET_WEBHOOK_BODY_RETENTION), then set to NULL by a periodic task.
DROP TABLE webhook_deliveries;
CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    connection_id uuid NOT NULL REFERENCES vcs_connections (id) ON DELETE CASCADE,
    -- The provider's delivery id (GitHub `X-GitHub-Delivery`, the same on a redelivery); NULL
    -- when the delivery carried none (it was refused as unreadable).
    delivery_id   text CHECK (length(delivery_id) BETWEEN 1 AND 200),
    -- The provider's event name and the payload's action, as received (NULL when absent).
    event         text CHECK (length(event) BETWEEN 1 AND 100),
    action        text CHECK (length(action) BETWEEN 1 AND 100),
    -- What Picket made of it: a stable snake_case code (`scan_queued`, `duplicate_head`, ...).
    outcome       text NOT NULL CHECK (outcome ~ '^[a-z][a-z0-9_]{0,63}$'),
    -- The scan it queued, if one.
    scan_id       uuid REFERENCES scans (id) ON DELETE SET NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    -- The raw body, while retained.
    body          bytea,
    UNIQUE (connection_id, delivery_id)
);
-- The connection's log, newest first.
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (connection_id, received_at DESC, id DESC);
-- The pruner's walk: bodies still held, oldest first.
CREATE INDEX webhook_deliveries_bodies ON webhook_deliveries (received_at) WHERE body IS NOT NULL;
