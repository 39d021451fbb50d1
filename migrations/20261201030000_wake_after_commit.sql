-- Wake-ups that a transaction leaves to its code to send after it commits (picket-db `wake`).
--
-- A NOTIFY makes its transaction take PostgreSQL's database-wide notification lock before it
-- commits and hold it until the commit is flushed, so notifying transactions commit one at a
-- time and lose group commit: on the development machine (2 cores, pgbench, 16 clients) an
-- INSERT committed 2,455 times/s, an INSERT + NOTIFY 714 times/s, and an INSERT followed by a
-- NOTIFY in its own transaction 1,999 times/s. The webhook route, which takes bursts, sets
-- `picket.wake = 'after_commit'` in its transaction: the triggers and queries below raise
-- nothing, and the route sends what it owes once committed. Everywhere else they notify as
-- before. A wake-up lost in between only delays: every listener also polls.
CREATE FUNCTION picket_wake(channel text, payload text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('picket.wake', true) IS DISTINCT FROM 'after_commit' THEN
        PERFORM pg_notify(channel, payload);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION scans_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM picket_wake('picket_scan_queued', '');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION pr_scans_notify_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM picket_wake('picket_pr_check', NEW.id::text);
    RETURN NULL;
END $$;

-- The deliveries' bodies: lz4 compresses a 20 KB JSON payload several times faster than the
-- default pglz (PostgreSQL 14+ built with lz4, as Debian's and the official images are; a
-- server built without it keeps pglz). Rows already stored keep their compression.
DO $$
BEGIN
    ALTER TABLE webhook_deliveries ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not built into this server; webhook bodies stay pglz';
END $$;

-- Which PR scans get a check and when it fails open, in one place: picket-db
-- `pr_checks::want` (a scan queued through the API) and the webhook route's queueing statement
-- (which cannot read the scan it is inserting) both register checks through it. NULL when the
-- connection's provider takes no check (only GitHub connections do, for now). PL/pgSQL keeps
-- the query's plan for the session, where a SQL function that cannot be inlined would be parsed
-- and planned again by every statement that calls it.
CREATE FUNCTION pr_check_fail_open_at(org uuid, connection uuid, queued_at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT queued_at + make_interval(secs => o.pr_scan_timeout_secs)
            FROM orgs o, vcs_connections v
            WHERE o.id = org AND v.id = connection AND v.provider = 'github');
END $$;
