-- A cluster that behaves like Supabase's, in what matters to the gate (../../../docs: README, "Supabase").
-- Written from the facts of Supabase's own SQL (supabase/postgres init scripts and migrations,
-- supabase/auth migrations), not copied from it. Run once per cluster, as its bootstrap superuser
-- supabase_admin (SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS).
ALTER ROLE supabase_admin WITH SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS;
ALTER ROLE supabase_admin SET search_path TO "$user", public, auth, extensions;

-- postgres: the role of the SQL editor and of `supabase db push`, demoted from superuser.
CREATE ROLE postgres NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS;
ALTER ROLE postgres SET search_path TO "$user", public, extensions;

-- The API roles: made NOINHERIT, later altered to INHERIT; service_role bypasses RLS.
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
ALTER ROLE anon INHERIT;
ALTER ROLE authenticated INHERIT;
ALTER ROLE service_role INHERIT;
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';

-- authenticator: PostgREST's login, which switches to an API role per request.
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE authenticator SET lock_timeout = '8s';
GRANT anon, authenticated, service_role TO postgres;

-- supabase_auth_admin: owns the auth schema's objects and runs the auth migrations.
CREATE ROLE supabase_auth_admin LOGIN CREATEROLE NOINHERIT NOREPLICATION;
ALTER ROLE supabase_auth_admin SET search_path = auth;
GRANT supabase_auth_admin TO postgres;
