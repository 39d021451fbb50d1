-- Supply Chain's advisories (domain.md §6): OSV records (https://ossf.github.io/osv-schema/),
-- shared by every org of the installation, imported from files or osv.dev's exports and kept
-- current by the sync loop.
--
-- A record keeps its JSON as imported (jsonb) beside the columns matching needs. Change is
-- detected by content (the SHA-256 of the record's canonical jsonb text), never by `modified`:
-- some databases publish a fixed `modified` (every Go record of the shared snapshot has
-- 0001-01-01). A withdrawn record stays, and stops matching.
CREATE TABLE advisories (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$'),
    modified        timestamptz,
    published       timestamptz,
    withdrawn       timestamptz,
    aliases         text[] NOT NULL DEFAULT '{}',
    record          jsonb NOT NULL CHECK (jsonb_typeof(record) = 'object'),
    content_sha256  bytea NOT NULL CHECK (length(content_sha256) = 32),
    -- Where it was last imported from (a file, a zip's member, an export's URL).
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 2000),
    imported_at     timestamptz NOT NULL DEFAULT now(),
    -- When its content last changed (its first import, or an update with other content).
    changed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX advisories_aliases ON advisories USING gin (aliases);

-- One row per affected package of a record: the ecosystem as OSV names it and the package name
-- as that ecosystem normalises it (picket_core::Ecosystem::normalize), what lockfile packages
-- are looked up by.
CREATE TABLE advisory_packages (
    ecosystem    text NOT NULL CHECK (ecosystem IN ('npm', 'PyPI', 'crates.io', 'Go', 'RubyGems',
                                                    'Maven', 'Packagist')),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
    advisory_id  text NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, advisory_id)
);

CREATE INDEX advisory_packages_advisory ON advisory_packages (advisory_id);

-- The import state: one row per source imported or synced (a folder, a zip file, an export's
-- URL), with its last attempt and what it changed.
CREATE TABLE advisory_sources (
    source           text PRIMARY KEY CHECK (length(source) BETWEEN 1 AND 2000),
    last_attempt_at  timestamptz NOT NULL,
    last_success_at  timestamptz,
    -- The last failed attempt's reason (cleared by a success).
    last_error       text CHECK (length(last_error) <= 4000),
    -- The HTTP validators of the last export fetched, to ask for it only when it changed.
    etag             text CHECK (length(etag) <= 500),
    last_modified    text CHECK (length(last_modified) <= 100),
    -- The last successful import: records read, and how many were new, changed, the same.
    records          integer NOT NULL DEFAULT 0 CHECK (records >= 0),
    inserted         integer NOT NULL DEFAULT 0 CHECK (inserted >= 0),
    updated          integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    unchanged        integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0)
);
