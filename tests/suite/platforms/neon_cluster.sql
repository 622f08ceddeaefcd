-- A cluster that behaves like Neon's (the report's own server), in what matters to the gate. Run once per cluster
-- as its bootstrap superuser cloud_admin, which Neon keeps to itself. The project's owner is not a superuser: a
-- member of neon_superuser, which holds BYPASSRLS "enabling members of this role to bypass the row security
-- system" (Neon's changelog, 2023-08-15); here the owner holds it itself, as PostgreSQL 16+ asks of a role that
-- creates a BYPASSRLS role (service_role). There is no auth schema and no API role: the DBA makes the report's
-- prerequisites and an auth.uid() shim (sql/prerequisites/).
CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS;
CREATE ROLE neondb_owner LOGIN CREATEDB CREATEROLE BYPASSRLS NOSUPERUSER;
GRANT neon_superuser TO neondb_owner;
-- Another role made in Neon's console, as a reviewer's: a member of neon_superuser like the owner, owning nothing.
CREATE ROLE reviewer LOGIN CREATEDB CREATEROLE BYPASSRLS NOSUPERUSER;
GRANT neon_superuser TO reviewer;
