-- Bitbucket Cloud and Azure DevOps connections take pull request feedback too: their pull
-- requests' scans get a check (a Code Insights report or build status on Bitbucket, a pull
-- request status on Azure DevOps) that fails open like GitHub's and GitLab's.
CREATE OR REPLACE FUNCTION pr_check_fail_open_at(org uuid, connection uuid, queued_at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT queued_at + make_interval(secs => o.pr_scan_timeout_secs)
            FROM orgs o, vcs_connections v
            WHERE o.id = org AND v.id = connection
              AND v.provider IN ('github', 'gitlab', 'bitbucket', 'azure_devops'));
END $$;
