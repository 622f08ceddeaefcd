-- Report, Recommendations, Step 2: schema auth and the user-to-organisation map.
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS auth.users_extended (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    email VARCHAR(255) UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_auth_users_org ON auth.users_extended(org_id);
CREATE INDEX IF NOT EXISTS idx_auth_users_email ON auth.users_extended(email);
