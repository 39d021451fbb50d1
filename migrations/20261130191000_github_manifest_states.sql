-- GitHub's App manifest flow (docs/github.md, "One click"): an admin asks for a manifest, the
-- browser posts it to GitHub, and GitHub redirects the browser back to Picket's callback with a
-- one-time code and the `state` Picket chose. The callback carries no bearer token: the state is
-- what ties it to the org that asked. Each row is one state: only its SHA-256 is kept (the state
-- itself is 256 random bits shown once), it expires after an hour (GitHub's codes do too) and is
-- consumed once, in the transaction that stores the new connection.
CREATE TABLE github_manifest_states (
    state_sha256  bytea PRIMARY KEY CHECK (length(state_sha256) = 32),
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- The id the connection will have: the manifest's webhook URL names it before it exists.
    connection_id uuid NOT NULL UNIQUE,
    -- The App's name as the manifest proposes it (GitHub: at most 34 characters); the
    -- connection's name unless GitHub reports another.
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 34),
    -- The GitHub organization the App is registered under; NULL: the admin's personal account.
    organization  text CHECK (organization ~ '^[A-Za-z0-9][A-Za-z0-9-]{0,38}$'),
    -- The GitHub API root (GitHub Enterprise Server: https://<host>/api/v3); empty: github.com.
    base_url      text NOT NULL DEFAULT '' CHECK (length(base_url) <= 2000),
    -- The admin token that asked (NULL once that token is deleted).
    requested_by  uuid REFERENCES api_tokens (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    -- Set by the callback that used it (or whose code GitHub refused); NULL: still usable.
    consumed_at   timestamptz,
    CHECK (expires_at > created_at)
);
-- Expired states are deleted when new ones are made.
CREATE INDEX github_manifest_states_expiry ON github_manifest_states (expires_at);
