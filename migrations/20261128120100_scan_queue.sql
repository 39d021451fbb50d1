-- The claim step of the scan queue, in one round trip.
--
-- Picks the org to serve (best priority of its queued scans first, then the org with the fewest
-- active scans, then the oldest scan), locks that org's best queued scan with SKIP LOCKED, then
-- takes the org row lock and recounts the org's active scans in a fresh snapshot so that the
-- per-org concurrency cap holds exactly even with many concurrent claimers. An org found at its
-- cap (or whose scans are all being claimed by others) is skipped and the next org tried.
CREATE FUNCTION claim_scan(p_owner text, p_lease_secs double precision)
RETURNS SETOF scans
LANGUAGE plpgsql AS $$
DECLARE
    v_skipped uuid[] := '{}';
    v_org     uuid;
    v_scan    uuid;
    v_cap     integer;
    v_active  bigint;
BEGIN
    LOOP
        SELECT o.id INTO v_org
        FROM orgs o
        CROSS JOIN LATERAL (
            SELECT s.priority, s.queued_at
            FROM scans s
            WHERE s.org_id = o.id AND s.state = 'queued' AND s.run_after <= now()
            ORDER BY s.priority, s.queued_at, s.id
            LIMIT 1
        ) best
        CROSS JOIN LATERAL (
            SELECT count(*) AS n
            FROM scans a
            WHERE a.org_id = o.id AND a.state IN ('claimed', 'running', 'reporting')
        ) act
        WHERE act.n < o.max_concurrent_scans AND o.id <> ALL (v_skipped)
        ORDER BY best.priority, act.n, best.queued_at, o.id
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;

        SELECT s.id INTO v_scan
        FROM scans s
        WHERE s.org_id = v_org AND s.state = 'queued' AND s.run_after <= now()
        ORDER BY s.priority, s.queued_at, s.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            v_skipped := v_skipped || v_org;
            CONTINUE;
        END IF;

        -- NO KEY UPDATE: serializes claimers of this org without blocking inserts that reference it.
        SELECT o.max_concurrent_scans INTO v_cap FROM orgs o WHERE o.id = v_org FOR NO KEY UPDATE;
        SELECT count(*) INTO v_active
        FROM scans a
        WHERE a.org_id = v_org AND a.state IN ('claimed', 'running', 'reporting');
        IF v_active >= v_cap THEN
            v_skipped := v_skipped || v_org;
            CONTINUE;
        END IF;

        RETURN QUERY
        WITH claimed AS (
            UPDATE scans
            SET state = 'claimed',
                lease_owner = p_owner,
                lease_token = gen_random_uuid(),
                lease_expires_at = now() + make_interval(secs => p_lease_secs),
                heartbeat_at = now(),
                claimed_at = now()
            WHERE id = v_scan
            RETURNING *
        ), event AS (
            INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor)
            SELECT c.id, c.org_id, 'queued', 'claimed', c.attempt, 'scheduler:' || p_owner
            FROM claimed c
        )
        SELECT * FROM claimed;
        RETURN;
    END LOOP;
END $$;
