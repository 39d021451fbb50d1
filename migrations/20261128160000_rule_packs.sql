-- Rule packs an org uploads (YAML Semgrep rules), loaded by every scan of the org next to
-- Picket's own pack. A pack is replaced whole; its rule ids are kept in rule_pack_rules so a rule
-- id names one rule in the org (the primary key) and policies can address it.

CREATE TABLE rule_packs (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$'),
    content    text NOT NULL,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    languages  text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE rule_pack_rules (
    org_id  uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    rule_id text NOT NULL,
    pack_id uuid NOT NULL REFERENCES rule_packs (id) ON DELETE CASCADE,
    ordinal integer NOT NULL,
    PRIMARY KEY (org_id, rule_id)
);

CREATE INDEX rule_pack_rules_pack ON rule_pack_rules (pack_id, ordinal);
