-- GitLab connections take pull request feedback too (issue 11): their merge requests' scans get
-- a check (a commit status) that fails open like GitHub's. The reconcile sweep covers them: a
-- GitLab project has no installation, so `provider_installation_id` stays NULL for it.
CREATE OR REPLACE FUNCTION pr_check_fail_open_at(org uuid, connection uuid, queued_at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT queued_at + make_interval(secs => o.pr_scan_timeout_secs)
            FROM orgs o, vcs_connections v
            WHERE o.id = org AND v.id = connection AND v.provider IN ('github', 'gitlab'));
END $$;
