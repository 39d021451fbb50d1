-- This installation's identity, drawn once when the database is first migrated. Every scan
-- environment a scheduler creates (sandbox namespaces and directories, Kubernetes objects)
-- carries it in its name and marks, so that two installations sharing a machine or a scan
-- namespace each list, and reap, only their own. One row, never changed.

CREATE TABLE installation (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- 12 hex digits of a version-4 UUID: all 48 bits random.
    id         text NOT NULL CHECK (id ~ '^[0-9a-f]{12}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO installation (id) VALUES (left(replace(gen_random_uuid()::text, '-', ''), 12));
