-- Another team's 0023 (sync infrastructure), named otherwise than ours: the report's Step 3 finds it by its
-- sync% tables in public.
CREATE TABLE sync_integrations (
    integration_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    platform text NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE sync_credentials (
    integration_id bigint PRIMARY KEY REFERENCES sync_integrations(integration_id) ON DELETE CASCADE,
    secret_ref text NOT NULL
);
ALTER TABLE sync_integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_credentials ENABLE ROW LEVEL SECURITY;
