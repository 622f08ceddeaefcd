-- What Supabase's auth schema provides and migration 0024's policies rely on:
-- the request's JWT claims read back as auth.uid(), auth.role() and auth.jwt(),
-- defined as Supabase defines them (request.jwt.claims, with the legacy
-- per-claim settings as fallback). A test acts as a user by setting the role
-- and request.jwt.claims with SET LOCAL inside its transaction.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;

-- The policies of 0024 look a user's organisation up in auth.users_extended as
-- the calling user: authenticated may read its own row and nothing else.
GRANT SELECT ON auth.users_extended TO authenticated;
GRANT ALL ON auth.users_extended TO service_role;
ALTER TABLE auth.users_extended ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS users_extended_select_own ON auth.users_extended;
CREATE POLICY users_extended_select_own ON auth.users_extended
    FOR SELECT TO authenticated
    USING (id = (SELECT auth.uid()));
