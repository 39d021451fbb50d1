-- The web UI's sessions (crates/web). Signing in with an API token, or with a one-time sign-in
-- link minted for one, opens a session that acts as that token: it has the token's org and role,
-- and it ends when the token is revoked or expires (the lookup joins the token), when its own
-- lifetime ends, or on sign-out (the row is deleted). Only the SHA-256 of the session id is kept;
-- the id itself (256 random bits) lives in the browser's `__Host-` cookie. The CSRF token is
-- derived from the id (crates/web), so nothing else is stored.
CREATE TABLE web_sessions (
    id_sha256    bytea PRIMARY KEY CHECK (length(id_sha256) = 32),
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    token_id     uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);
-- Expired sessions are deleted when new ones are made.
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- One-time sign-in links (`picket run` prints one for the admin token it made): the code's
-- SHA-256, the token the session will act as, a short expiry, and when it was used. A code opens
-- one session, once.
CREATE TABLE web_sign_in_links (
    code_sha256 bytea PRIMARY KEY CHECK (length(code_sha256) = 32),
    token_id    uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sign_in_links_expiry ON web_sign_in_links (expires_at);
