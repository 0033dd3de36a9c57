-- Hardening (issue 17): admin actions audited, secrets never in the audit log, speakers and
-- households erasable, the last admin kept.

-- audit_row(key, redacted columns...): the columns after the key never reach the audit log
-- (password and token hashes, a token's last use, a device's household)
CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    key_col text := TG_ARGV[0];
    redact text[] := CASE WHEN TG_NARGS > 1 THEN TG_ARGV[1:TG_NARGS - 1] ELSE '{}' END;
    b jsonb;
    a jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD) - redact; END IF;
    IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW) - redact; END IF;
    IF TG_OP = 'UPDATE' AND (b - 'updated_at') = (a - 'updated_at') THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (actor, table_name, row_key, action, before, after)
    VALUES (coalesce(nullif(current_setting('wastepilot.actor', true), ''), session_user),
            TG_TABLE_NAME, coalesce(a, b) ->> key_col,
            CASE WHEN current_setting('wastepilot.erasing', true) = 'on' THEN 'erase'
                 ELSE lower(TG_OP) END,
            b, a);
    RETURN NULL;
END $$;

CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION audit_row('username', 'password_hash');
CREATE TRIGGER api_tokens_audit AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION audit_row('id', 'token_hash', 'last_used_at');
CREATE TRIGGER devices_audit AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION audit_row('id', 'household_ref');

-- Erasure may blank a person's fields in earlier audit rows: attendees' (as before) and
-- workshop speakers' (the speakers list)
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    personal text[] := ARRAY['person_name', 'person_role', 'email', 'speakers'];
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('wastepilot.erasing', true) = 'on'
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.table_name = OLD.table_name AND NEW.row_key = OLD.row_key
       AND NEW.action = OLD.action
       AND (NEW.before IS NULL) = (OLD.before IS NULL)
       AND (NEW.after IS NULL) = (OLD.after IS NULL)
       AND (OLD.before IS NULL OR (NEW.before - personal) = (OLD.before - personal))
       AND (OLD.after IS NULL OR (NEW.after - personal) = (OLD.after - personal)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

-- emails are compared as people mean them: NFKC-normalised and lower-case (the code stores
-- them so; older rows are brought in line where that makes no duplicate)
UPDATE registrations r SET email = lower(normalize(r.email, NFKC))
WHERE r.email IS NOT NULL AND r.email <> lower(normalize(r.email, NFKC))
  AND NOT EXISTS (
      SELECT 1 FROM registrations o
      WHERE o.workshop_id = r.workshop_id AND o.id <> r.id AND o.status <> 'cancelled'
        AND o.email = lower(normalize(r.email, NFKC)));
