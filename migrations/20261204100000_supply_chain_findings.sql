-- Supply Chain findings (issue 12 §4): each carries the vulnerable dependency it is about
-- (picket_core::protocol::VulnerableDependency as JSON: ecosystem, package, versions,
-- advisories, aliases, fixed, direct, dev, severity_source, summary). Only they carry one, and
-- they always do.
ALTER TABLE findings
    ADD COLUMN dependency jsonb
        CHECK (dependency IS NULL OR jsonb_typeof(dependency) = 'object'),
    ADD CONSTRAINT findings_dependency_product
        CHECK ((product = 'supply_chain') = (dependency IS NOT NULL));

ALTER TABLE scan_findings
    ADD COLUMN dependency jsonb
        CHECK (dependency IS NULL OR jsonb_typeof(dependency) = 'object'),
    ADD CONSTRAINT scan_findings_dependency_product
        CHECK ((product = 'supply_chain') = (dependency IS NOT NULL));
