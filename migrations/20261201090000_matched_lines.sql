-- Matched lines of Code findings (issue 10, Finding page): the worker sends at most a few lines
-- of each Code finding; the org may turn storing them off, which also clears what is stored.
ALTER TABLE orgs ADD COLUMN store_matched_lines boolean NOT NULL DEFAULT true;

-- The lines from start_line on, joined by '\n' (a line never holds one). Never for Secrets.
ALTER TABLE findings ADD COLUMN matched_lines text
    CONSTRAINT findings_matched_lines_check
    CHECK (matched_lines IS NULL OR (product = 'code' AND length(matched_lines) <= 4000));
