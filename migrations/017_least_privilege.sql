-- Least privilege (issue 26): migrations run as the schema's owner; the services (API, ingest,
-- scheduler, CLI) sign in as a role that is a member of wastepilot_app, which may read and
-- write rows and nothing else: no DDL (ALTER TABLE, DROP/ALTER TRIGGER need ownership), no
-- TRUNCATE, no DELETE on the audit log (its trigger refuses UPDATE except erasure's blanking,
-- migrations/010), no writes to schema_migrations. The local set-up and compose's init script
-- create the login role; this file grants the rights in each database it runs on.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wastepilot_app') THEN
        CREATE ROLE wastepilot_app NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO wastepilot_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO wastepilot_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO wastepilot_app;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM wastepilot_app;
REVOKE DELETE ON audit_log FROM wastepilot_app;
-- tables and sequences of later migrations (run by the same owner) get the same rights
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO wastepilot_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO wastepilot_app;

-- Retention drops whole chunks, which only the hypertable's owner may: this function runs as
-- the owner, for the readings table only, and returns how many chunks went.
CREATE FUNCTION drop_reading_chunks(older_than timestamptz) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT count(*)::integer FROM drop_chunks('readings', older_than => older_than) $$;
REVOKE ALL ON FUNCTION drop_reading_chunks(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_reading_chunks(timestamptz) TO wastepilot_app;
