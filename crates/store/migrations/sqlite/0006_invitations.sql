-- An invitation is a one-time token a new member uses to set their password; it opens no API
-- call, and accepting it revokes it.

ALTER TABLE api_tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'api'
    CHECK (purpose IN ('api', 'invitation'));
