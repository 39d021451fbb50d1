-- Findings triage for the web UI (crates/web) and the API.
--
-- `ignore_reason`: why an ignored finding is ignored, one of a fixed list (Semgrep's platform
-- uses the same kind of list); `triage_reason` stays the free-text comment (and `nosemgrep` for a
-- finding an inline comment suppresses). NULL for open findings and for ignores that gave only
-- text.
ALTER TABLE findings ADD COLUMN ignore_reason text CHECK (ignore_reason IN (
    'false_positive', 'acceptable_risk', 'used_in_tests', 'mitigated', 'duplicate', 'no_time', 'other'
));

-- An ignored finding says why: from the list, in words, or both.
ALTER TABLE findings DROP CONSTRAINT findings_triage_reason;
ALTER TABLE findings ADD CONSTRAINT findings_triage_reason
    CHECK (status <> 'ignored' OR triage_reason IS NOT NULL OR ignore_reason IS NOT NULL) NOT VALID;

-- Every triage change of a finding, with who and when (append-only, like scan_events).
CREATE TABLE finding_triage_events (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    finding_id    uuid NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text NOT NULL,
    from_status   finding_status NOT NULL,
    to_status     finding_status NOT NULL,
    ignore_reason text,
    comment       text,
    PRIMARY KEY (finding_id, id)
);

-- The org-wide Findings page: most severe first, newest first within a severity.
CREATE INDEX findings_org ON findings (org_id, severity DESC, created_at DESC, id);

-- Which findings a Findings-page filter matches: one definition for the page, its count, its
-- grouping by rule, its CSV export and bulk triage "of all matching". NULL arguments do not
-- filter. `min_severity`: this severity or worse. `path_prefix`: paths starting with it.
-- `on_default_branch`: true, findings on the project's default branch; false, on other refs
-- (pull requests' heads, other branches). `since`: first seen at or after it.
CREATE FUNCTION finding_matches(
    p_org uuid, p_status finding_status, p_min_severity severity, p_product product,
    p_rule_id text, p_project uuid, p_path_prefix text, p_on_default_branch boolean,
    p_since timestamptz, p_ignore_reason text
) RETURNS SETOF findings
LANGUAGE sql STABLE AS $$
    SELECT f.*
    FROM findings f
    WHERE f.org_id = p_org
      AND (p_status IS NULL OR f.status = p_status)
      AND (p_min_severity IS NULL OR f.severity >= p_min_severity)
      AND (p_product IS NULL OR f.product = p_product)
      AND (p_rule_id IS NULL OR f.rule_id = p_rule_id)
      AND (p_project IS NULL OR f.project_id = p_project)
      AND (p_path_prefix IS NULL OR starts_with(f.path, p_path_prefix))
      AND (p_on_default_branch IS NULL OR p_on_default_branch = (f.git_ref = (
               SELECT p.default_branch FROM projects p WHERE p.id = f.project_id)))
      AND (p_since IS NULL OR f.created_at >= p_since)
      AND (p_ignore_reason IS NULL OR f.ignore_reason = p_ignore_reason)
$$;

-- A triage decision on findings `p_ids` of org `p_org`, applied to every row of their
-- fingerprints in their projects (other branches, pull requests' heads: one decision covers the
-- finding wherever it is seen): ignore (with `p_ignore_reason` and the comment `p_comment`) or,
-- when `p_ignore` is false, reopen (only rows that are ignored). Records one
-- finding_triage_events row per row changed. Returns how many rows changed.
CREATE FUNCTION apply_triage(
    p_org uuid, p_ids uuid[], p_ignore boolean, p_ignore_reason text, p_comment text,
    p_actor text
) RETURNS bigint LANGUAGE sql AS $$
    WITH picked AS (
        SELECT DISTINCT project_id, fingerprint FROM findings
        WHERE org_id = p_org AND id = ANY (p_ids)
    ), old AS (
        SELECT f.id, f.status FROM findings f
        JOIN picked USING (project_id, fingerprint)
        WHERE f.org_id = p_org AND (p_ignore OR f.status = 'ignored')
        FOR UPDATE OF f
    ), changed AS (
        UPDATE findings f
        SET status = CASE WHEN p_ignore THEN 'ignored' ELSE 'open' END::finding_status,
            ignore_reason = CASE WHEN p_ignore THEN p_ignore_reason END,
            triage_reason = CASE WHEN p_ignore THEN p_comment END,
            triaged_by = p_actor, triaged_at = now(), updated_at = now()
        FROM old
        WHERE f.id = old.id
        RETURNING f.id, f.org_id, old.status AS from_status, f.status AS to_status,
                  f.ignore_reason, f.triage_reason
    ), logged AS (
        INSERT INTO finding_triage_events (finding_id, org_id, actor, from_status, to_status,
                                           ignore_reason, comment)
        SELECT id, org_id, p_actor, from_status, to_status, ignore_reason, triage_reason
        FROM changed
        RETURNING 1
    )
    SELECT count(*) FROM logged
$$;
