-- Migration 0023: Sync infrastructure.
-- The per-organisation connection to an external system (WooCommerce, Odoo,
-- Shopify or a custom source) that every sync of migration 0024 runs against.
-- 0024 does not reference it by key; the report requires it be applied first
-- (Recommendations, Step 3), and the readiness suite checks for this table.
BEGIN;

CREATE TABLE sync_connection (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    provider TEXT NOT NULL CHECK (provider IN ('woocommerce', 'odoo', 'shopify', 'custom')),
    name TEXT NOT NULL,
    config JSONB NOT NULL DEFAULT '{}'::jsonb,
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

ALTER TABLE sync_connection ENABLE ROW LEVEL SECURITY;

CREATE POLICY sync_connection_org_isolation ON sync_connection
    FOR ALL TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));

COMMIT;
