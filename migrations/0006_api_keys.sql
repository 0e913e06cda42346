-- Up Migration
-- No down migration: dropping the table would lock every client out; revoke keys instead.

-- API keys (API.md §6). The secret is shown once at creation and never stored: `secret_sha256` is the
-- SHA-256 of the whole key (keys are 256 random bits, so a slow hash buys nothing). `prefix` is the
-- start of the key, unique, for lookup and for telling keys apart in lists and logs.
CREATE TABLE api_keys (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  prefix        text        NOT NULL UNIQUE CHECK (prefix ~ '^bl_[a-z]+_[A-Za-z0-9_-]{8}$'),
  secret_sha256 bytea       NOT NULL CHECK (octet_length(secret_sha256) = 32),
  name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  role          text        NOT NULL CHECK (role IN ('viewer', 'clerk', 'officer', 'admin')),
  created_at    timestamptz(3) NOT NULL DEFAULT date_trunc('milliseconds', now()),
  last_used_at  timestamptz(3),
  revoked_at    timestamptz(3),
  expires_at    timestamptz(3),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
