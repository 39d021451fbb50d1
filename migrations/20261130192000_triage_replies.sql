-- Triage by reply (docs/github.md, "Triage from a pull request"): a person's reply `/fp <reason>`,
-- `/ar <reason>`, `/other <reason>` or `/open` to one of Picket's inline comments. The webhook
-- route records the request in the delivery's transaction, without calling the provider; the
-- control plane's loop then checks it with the provider (the comment replied to is Picket's own
-- and names a finding; the author may write to the repository), triages the finding through the
-- same statement as the API's triage, and answers in the thread.
--
-- States: `pending` (to be checked and decided) → `answering` (decided, and the finding triaged
-- in the same transaction; the answer is still to be posted) → `done`. `failed`: the provider
-- refused for good (the reason in `last_error`); a triage already decided stays.
CREATE TABLE triage_requests (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    project_id         uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- The delivery that brought the reply (its log row).
    delivery_row       bigint REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    -- The repository as the event named it (current even after a rename) and the installation
    -- it came through.
    repo_full_name     text NOT NULL CHECK (length(repo_full_name) BETWEEN 1 AND 300),
    installation_id    text CHECK (length(installation_id) BETWEEN 1 AND 100),
    pr_number          integer NOT NULL CHECK (pr_number > 0),
    -- The reply, and the comment it answers (the thread's first comment: Picket's, if anyone's).
    comment_id         text NOT NULL CHECK (length(comment_id) BETWEEN 1 AND 100),
    parent_comment_id  text NOT NULL CHECK (length(parent_comment_id) BETWEEN 1 AND 100),
    -- Who wrote it: the provider's login and user id.
    author_login       text NOT NULL CHECK (length(author_login) BETWEEN 1 AND 255),
    author_id          text NOT NULL CHECK (length(author_id) BETWEEN 1 AND 100),
    -- The command as written (picket-core triage::Command): its word, and the reason text after
    -- it, normalized but not yet checked (a comment is at most 65,536 characters).
    verb               text NOT NULL CHECK (verb IN ('fp', 'ar', 'other', 'open')),
    reason             text CHECK (length(reason) BETWEEN 1 AND 65536),
    state              text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'answering', 'done', 'failed')),
    -- What was decided: `triaged`, `reopened`, `not_ignored`, `finding_unknown`, `refused`,
    -- `usage` (all answered), `not_picket_comment` (dropped without an answer), `failed`.
    outcome            text CHECK (outcome ~ '^[a-z][a-z0-9_]{0,63}$'),
    -- The finding's fingerprint, from the hidden marker of the comment answered.
    fingerprint        text CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    -- The answer to post (fixed when decided, so every attempt posts the same), how many
    -- attempts began, and the answer's id once posted.
    reply_body         text,
    reply_attempts     integer NOT NULL DEFAULT 0,
    reply_comment_id   text CHECK (length(reply_comment_id) BETWEEN 1 AND 100),
    -- Retry bookkeeping: when the loop may look again, provider failures in a row, the last
    -- failure's stable code (never a credential).
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    failures           integer NOT NULL DEFAULT 0,
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- One request per reply, whatever number of deliveries bring it.
    UNIQUE (project_id, comment_id),
    CHECK (state <> 'answering' OR reply_body IS NOT NULL),
    CHECK (state = 'pending' OR outcome IS NOT NULL)
);
-- The loop's walk: requests still to handle, soonest first.
CREATE INDEX triage_requests_due ON triage_requests (next_attempt_at)
    WHERE state IN ('pending', 'answering');
