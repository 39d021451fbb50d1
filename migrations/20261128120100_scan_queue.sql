-- The claim step of the scan queue, in one round trip.
--
-- 1. Pick the org to serve: the one whose best queued scan has the highest priority, then the org
--    with the fewest active scans (fairness), then the oldest scan. Orgs at their cap are passed
--    over.
-- 2. Lock that org's best queued scan with FOR UPDATE SKIP LOCKED.
-- 3. Give it a free concurrency slot of its org, drawn at random from [0, max_concurrent_scans),
--    taken with a try-lock on (org, slot) and confirmed free after the lock. Claimers of one org
--    therefore do not queue up behind each other as they would behind a per-org lock, and a slot
--    frees itself when its scan leaves the active states. The unique index scans_active_slot
--    over active scans backs this up: no two active scans of an org ever share a slot, so the
--    cap is exact.
-- An org found full (or whose scans are all being claimed by others) is skipped and the next
-- org tried.
CREATE FUNCTION claim_scan(p_owner text, p_lease_secs double precision)
RETURNS SETOF scans
LANGUAGE plpgsql AS $$
DECLARE
    v_skipped  uuid[] := '{}';
    v_org      uuid;
    v_cap      integer;
    v_scan     uuid;
    v_used     smallint[];
    v_slot     smallint;
    v_attempts integer;
BEGIN
    LOOP
        SELECT o.id, o.max_concurrent_scans INTO v_org, v_cap
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

        -- Up to 8 draws: a miss means another claimer took the slot a moment ago.
        v_attempts := 0;
        LOOP
            v_attempts := v_attempts + 1;
            v_used := ARRAY(
                SELECT a.slot FROM scans a
                WHERE a.org_id = v_org AND a.state IN ('claimed', 'running', 'reporting')
            );
            EXIT WHEN cardinality(v_used) >= v_cap OR v_attempts > 8;
            v_slot := floor(random() * v_cap)::smallint;
            IF v_slot = ANY (v_used) THEN
                -- Taken: a random free one instead (the array holds fewer than v_cap entries).
                SELECT s::smallint INTO v_slot
                FROM generate_series(0, v_cap - 1) AS s
                WHERE s <> ALL (v_used)
                ORDER BY random()
                LIMIT 1;
            END IF;
            -- The slot is ours if we hold its lock (held to commit, so a racing claimer's try
            -- fails at once instead of waiting) and no committed active scan holds it (checked
            -- after taking the lock, in a fresh snapshot, so a claim committed meanwhile is seen).
            CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('picket.slot:' || v_org::text), v_slot);
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM scans a
                WHERE a.org_id = v_org AND a.slot = v_slot
                  AND a.state IN ('claimed', 'running', 'reporting')
            );
            RETURN QUERY
            WITH claimed AS (
                UPDATE scans
                SET state = 'claimed',
                    slot = v_slot,
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
        v_skipped := v_skipped || v_org;
    END LOOP;
END $$;
