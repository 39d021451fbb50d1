-- The Projects page's rows (crates/web) and the set a bulk scan "of all matching" acts on
-- (POST /api/v1/scans with `matching`): one definition of which projects match a filter, so the
-- page's count and the scan's set cannot disagree. Each row carries the project's latest full
-- scan, its latest pull-request (diff) scan and its open findings by severity on its default
-- branch. An inlinable SQL function: the planner sees through it.
--
-- `scanning`: true, projects Picket scans (enabled, with full or diff scans on); false, the rest
-- (disabled by the provider, or both kinds of scan off); NULL, both. Other NULL arguments do not
-- filter. `name` is a case-insensitive substring of the full name.
CREATE FUNCTION project_overview(
    p_org uuid, p_scanning boolean, p_name text, p_provider vcs_provider,
    p_last_state scan_state, p_has_findings boolean
) RETURNS TABLE (
    id uuid, full_name text, connection_id uuid, connection_name text, provider vcs_provider,
    default_branch text, clone_url text, full_scans_enabled boolean, diff_scans_enabled boolean,
    weekly_weekday smallint, weekly_time time, disabled_reason text, created_at timestamptz,
    full_id uuid, full_state scan_state, full_queued_at timestamptz, full_started_at timestamptz,
    full_finished_at timestamptz, full_error_code text,
    pr_id uuid, pr_state scan_state, pr_number integer, pr_queued_at timestamptz,
    pr_started_at timestamptz, pr_finished_at timestamptz, pr_error_code text,
    open_critical bigint, open_high bigint, open_medium bigint, open_low bigint, open_info bigint,
    last_activity timestamptz
)
LANGUAGE sql STABLE AS $$
    SELECT p.id, p.full_name, c.id, c.name, c.provider, p.default_branch, p.clone_url,
           p.full_scans_enabled, p.diff_scans_enabled, p.weekly_weekday, p.weekly_time,
           p.disabled_reason, p.created_at,
           lf.id, lf.state, lf.queued_at, lf.started_at, lf.finished_at, lf.error_code,
           lp.id, lp.state, lp.pr_number, lp.queued_at, lp.started_at, lp.finished_at, lp.error_code,
           COALESCE(fc.critical, 0), COALESCE(fc.high, 0), COALESCE(fc.medium, 0),
           COALESCE(fc.low, 0), COALESCE(fc.info, 0),
           GREATEST(lf.queued_at, lp.queued_at)
    FROM projects p
    JOIN vcs_connections c ON c.id = p.connection_id
    LEFT JOIN LATERAL (
        SELECT s.id, s.state, s.queued_at, s.started_at, s.finished_at, s.error_code
        FROM scans s WHERE s.project_id = p.id AND s.kind = 'full'
        ORDER BY s.queued_at DESC, s.id DESC LIMIT 1
    ) lf ON true
    LEFT JOIN LATERAL (
        SELECT s.id, s.state, s.pr_number, s.queued_at, s.started_at, s.finished_at, s.error_code
        FROM scans s WHERE s.project_id = p.id AND s.kind = 'diff'
        ORDER BY s.queued_at DESC, s.id DESC LIMIT 1
    ) lp ON true
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE f.severity = 'critical') AS critical,
               count(*) FILTER (WHERE f.severity = 'high') AS high,
               count(*) FILTER (WHERE f.severity = 'medium') AS medium,
               count(*) FILTER (WHERE f.severity = 'low') AS low,
               count(*) FILTER (WHERE f.severity = 'info') AS info
        FROM findings f
        WHERE f.project_id = p.id AND f.status = 'open' AND f.git_ref = p.default_branch
    ) fc ON true
    WHERE p.org_id = p_org
      AND (p_scanning IS NULL OR p_scanning = (p.disabled_reason IS NULL
                                              AND (p.full_scans_enabled OR p.diff_scans_enabled)))
      AND (p_name IS NULL OR strpos(lower(p.full_name), lower(p_name)) > 0)
      AND (p_provider IS NULL OR c.provider = p_provider)
      AND (p_last_state IS NULL OR p_last_state IN (lf.state, lp.state))
      AND (p_has_findings IS NULL
           OR p_has_findings = (COALESCE(fc.critical + fc.high + fc.medium + fc.low + fc.info, 0) > 0))
$$;

-- Live pages (crates/web): a scan queued or moved raises `picket_scan_changed` with its org's
-- id, once per org and transaction (PostgreSQL folds equal notifications of one transaction),
-- through picket_wake, so a pull request's after-commit transaction stays silent (the pages
-- also re-read on a timer: a notification only makes them quicker).
CREATE FUNCTION scans_notify_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM picket_wake('picket_scan_changed', NEW.org_id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION scans_notify_changed_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org uuid;
BEGIN
    FOR org IN SELECT DISTINCT org_id FROM inserted LOOP
        PERFORM picket_wake('picket_scan_changed', org::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER scans_changed_on_move AFTER UPDATE OF state ON scans
    FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION scans_notify_changed_rows();
CREATE TRIGGER scans_changed_on_insert AFTER INSERT ON scans
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION scans_notify_changed_inserted();
