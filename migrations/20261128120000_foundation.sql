-- Picket's foundation schema. Every row belongs to an org; every request-serving query filters by it.
-- Enumerations mirror picket-core's enums exactly (a test checks both lists agree).

CREATE TYPE token_role AS ENUM ('admin', 'member');
CREATE TYPE vcs_provider AS ENUM ('github', 'gitlab', 'bitbucket', 'azure_devops', 'git');
CREATE TYPE scan_kind AS ENUM ('full', 'diff');
CREATE TYPE scan_trigger AS ENUM ('initial', 'weekly', 'pull_request', 'bulk', 'manual', 'rerun');
CREATE TYPE scan_state AS ENUM
    ('queued', 'claimed', 'running', 'reporting', 'succeeded', 'failed', 'cancelled', 'timed_out');
CREATE TYPE product AS ENUM ('code', 'supply_chain', 'secrets');
CREATE TYPE severity AS ENUM ('info', 'low', 'medium', 'high', 'critical');
CREATE TYPE finding_status AS ENUM ('open', 'fixed', 'removed', 'ignored');
CREATE TYPE rule_mode AS ENUM ('monitor', 'comment', 'block');

CREATE TABLE orgs (
    id                   uuid PRIMARY KEY,
    -- URL-safe handle, unique across the instance.
    slug                 text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- How many of the org's scans may hold a lease at once.
    max_concurrent_scans integer NOT NULL DEFAULT 4 CHECK (max_concurrent_scans BETWEEN 1 AND 1000),
    -- Fail-open timeout for PR checks, seconds (domain.md §1: default 10 min, 1-60 min).
    pr_scan_timeout_secs integer NOT NULL DEFAULT 600 CHECK (pr_scan_timeout_secs BETWEEN 60 AND 3600),
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         token_role NOT NULL,
    -- The first characters of the token (`pkt_` + 8), safe to show, to tell tokens apart.
    prefix       text NOT NULL,
    -- SHA-256 of the whole token; the token itself is shown once and never stored.
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at);

CREATE TABLE vcs_connections (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    provider    vcs_provider NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Base URL of the provider's API (or, for plain git, empty).
    base_url    text NOT NULL DEFAULT '',
    -- XChaCha20-Poly1305: 24-byte nonce || ciphertext || tag, with the row id as associated data.
    -- The plaintext is JSON text (an object or a string). NULL: no credentials (public git).
    credentials bytea,
    key_version smallint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE projects (
    id                 uuid PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    connection_id      uuid NOT NULL REFERENCES vcs_connections (id) ON DELETE RESTRICT,
    -- The provider's own id of the repository (stable across renames).
    provider_repo_id   text NOT NULL CHECK (length(provider_repo_id) BETWEEN 1 AND 300),
    full_name          text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 300),
    clone_url          text NOT NULL CHECK (length(clone_url) BETWEEN 1 AND 2000),
    default_branch     text NOT NULL CHECK (length(default_branch) BETWEEN 1 AND 255),
    full_scans_enabled boolean NOT NULL DEFAULT true,
    diff_scans_enabled boolean NOT NULL DEFAULT true,
    -- Weekly full-scan slot, UTC: 0 = Monday ... 6 = Sunday, and a time of day.
    weekly_weekday     smallint NOT NULL CHECK (weekly_weekday BETWEEN 0 AND 6),
    weekly_time        time NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, provider_repo_id)
);
CREATE INDEX projects_org_name ON projects (org_id, full_name, id);

CREATE TABLE scans (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind             scan_kind NOT NULL,
    trigger          scan_trigger NOT NULL,
    -- Lower runs first; derived from the trigger by picket-core.
    priority         smallint NOT NULL,
    state            scan_state NOT NULL DEFAULT 'queued',
    attempt          integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    max_attempts     integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    -- What to scan: a branch (full scans) or a PR head against its target (diff scans).
    git_ref          text,
    commit_sha       text,
    base_ref         text,
    base_sha         text,
    pr_number        integer,
    -- Key of the week a weekly scan belongs to (the slot instant); unique per project.
    weekly_slot_at   timestamptz,
    -- A re-run points at the scan it repeats.
    rerun_of         uuid REFERENCES scans (id) ON DELETE SET NULL,
    requested_by     uuid REFERENCES api_tokens (id) ON DELETE SET NULL,
    -- The lease: who holds the scan, the fencing token every later update must present, and
    -- when it lapses (database clock).
    lease_owner      text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    heartbeat_at     timestamptz,
    -- Which of its org's `max_concurrent_scans` slots the scan occupies while it holds a lease
    -- (0-based; meaningless in other states). A unique index over active scans makes the cap
    -- exact without serializing claimers: see claim_scan().
    slot             smallint CHECK (slot >= 0),
    queued_at        timestamptz NOT NULL DEFAULT now(),
    -- Not claimable before this instant (backoff before a retry).
    run_after        timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    error_code       text,
    error_message    text,
    CHECK ((state IN ('claimed', 'running', 'reporting')) = (lease_token IS NOT NULL)),
    CHECK (state NOT IN ('claimed', 'running', 'reporting') OR slot IS NOT NULL),
    -- A diff scan compares against a base; a full scan has none.
    CHECK (kind = 'diff' OR (pr_number IS NULL AND base_sha IS NULL AND base_ref IS NULL)),
    CHECK (kind = 'full' OR base_sha IS NOT NULL OR base_ref IS NOT NULL)
);
-- The claim path: the best queued scan of one org.
CREATE INDEX scans_queued ON scans (org_id, priority, queued_at, id) WHERE state = 'queued';
-- Concurrency slots: no two active scans of an org hold the same slot. Also serves the active
-- counts of the claim and the rescuer (active scans are few: at most the sum of org caps).
CREATE UNIQUE INDEX scans_active_slot ON scans (org_id, slot)
    WHERE state IN ('claimed', 'running', 'reporting');
-- Scan history of a project, newest first.
CREATE INDEX scans_project ON scans (project_id, queued_at DESC, id DESC);
CREATE UNIQUE INDEX scans_weekly_once ON scans (project_id, weekly_slot_at) WHERE trigger = 'weekly';
-- At most one full scan of a project waits in the queue: asking again joins the waiting one.
CREATE UNIQUE INDEX scans_one_queued_full ON scans (project_id) WHERE state = 'queued' AND kind = 'full';

-- Append-only audit of every state change.
CREATE TABLE scan_events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    scan_id    uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    -- The scan's org, copied for org-scoped reads. No foreign key of its own: the scan's already
    -- ties it to the org, and a second one would take a share lock on the org row with every
    -- event, making one hot row of every busy org.
    org_id     uuid NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state scan_state,
    to_state   scan_state NOT NULL,
    attempt    integer NOT NULL,
    -- Who moved it: `api:<token id>`, `scheduler:<owner>`, `rescuer`, `schedule`.
    actor      text NOT NULL,
    detail     text,
    -- One index serves both identity and "a scan's events in order".
    PRIMARY KEY (scan_id, id)
);

CREATE FUNCTION scan_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'scan_events is append-only';
END $$;
CREATE TRIGGER scan_events_no_update BEFORE UPDATE OR DELETE ON scan_events
    FOR EACH ROW WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION scan_events_append_only();

-- Wake claimers when work arrives; they also poll, so a lost notification only delays.
CREATE FUNCTION scans_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('picket_scan_queued', '');
    RETURN NULL;
END $$;
CREATE TRIGGER scans_queued_on_insert AFTER INSERT ON scans
    FOR EACH STATEMENT EXECUTE FUNCTION scans_notify_queued();
CREATE TRIGGER scans_queued_on_requeue AFTER UPDATE OF state ON scans
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION scans_notify_queued();

CREATE TABLE findings (
    id                  uuid PRIMARY KEY,
    org_id              uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id          uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- The branch the finding was seen on.
    git_ref             text NOT NULL,
    product             product NOT NULL,
    rule_id             text NOT NULL,
    path                text NOT NULL,
    start_line          integer NOT NULL CHECK (start_line >= 1),
    end_line            integer NOT NULL CHECK (end_line >= start_line),
    severity            severity NOT NULL,
    message             text NOT NULL,
    fingerprint         text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    first_seen_scan_id  uuid NOT NULL REFERENCES scans (id),
    last_seen_scan_id   uuid NOT NULL REFERENCES scans (id),
    status              finding_status NOT NULL DEFAULT 'open',
    triage_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, git_ref, fingerprint)
);
-- Listing a project's findings, most severe first, with or without a status filter.
CREATE INDEX findings_project ON findings (project_id, status, severity, id);
CREATE INDEX findings_project_severity ON findings (project_id, severity, id);

-- A policy is a named set of rule modes; a rule in several policies takes the strongest mode.
CREATE TABLE policies (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- `effective` is reserved: /api/v1/policies/effective is the merged view.
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$' AND name <> 'effective'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE policy_rules (
    policy_id uuid NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    rule_id   text NOT NULL,
    mode      rule_mode NOT NULL,
    PRIMARY KEY (policy_id, rule_id)
);

-- Provider deliveries already seen, so a redelivered webhook is not processed twice.
CREATE TABLE webhook_deliveries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    vcs_provider NOT NULL,
    delivery_id text NOT NULL,
    org_id      uuid REFERENCES orgs (id) ON DELETE CASCADE,
    event       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, delivery_id)
);
