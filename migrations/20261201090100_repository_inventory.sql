-- What each connection can see (issue 10, Projects page "Not scanning" tab): the repositories of
-- the connection's last full listing, so the tab lists the ones Picket does not scan without
-- calling the provider on every page view. Replaced whole by every full listing (adding
-- repositories, the tab's Refresh, the scheduler's periodic refresh); a page of the connection's
-- live listing adds or updates what it shows.
CREATE TABLE connection_repositories (
    connection_id    uuid NOT NULL REFERENCES vcs_connections (id) ON DELETE CASCADE,
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    provider_repo_id text NOT NULL CHECK (length(provider_repo_id) BETWEEN 1 AND 300),
    full_name        text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 300),
    clone_url        text NOT NULL CHECK (length(clone_url) BETWEEN 1 AND 2000),
    default_branch   text NOT NULL CHECK (length(default_branch) BETWEEN 1 AND 255),
    private          boolean NOT NULL,
    archived         boolean NOT NULL,
    installation_id  text,
    seen_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, provider_repo_id)
);
CREATE INDEX connection_repositories_org ON connection_repositories (org_id, full_name);

-- When the connection's whole listing was last stored; NULL: never.
ALTER TABLE vcs_connections ADD COLUMN repositories_listed_at timestamptz;
