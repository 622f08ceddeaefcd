-- A production lookalike as the readiness report found it: operational tables with rows,
-- and no organization table, no auth schema, no auth.users_extended.
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE products (id bigserial PRIMARY KEY, sku text UNIQUE NOT NULL, name text NOT NULL, price numeric(12, 2));
CREATE TABLE suppliers (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE inventory (
    product_id bigint PRIMARY KEY REFERENCES products(id),
    supplier_id bigint REFERENCES suppliers(id),
    quantity integer NOT NULL DEFAULT 0
);
INSERT INTO customers (name, email) SELECT 'customer ' || g, 'c' || g || '@shop.test' FROM generate_series(1, 200) g;
INSERT INTO suppliers (name) SELECT 'supplier ' || g FROM generate_series(1, 20) g;
INSERT INTO products (sku, name, price) SELECT 'SKU-' || g, 'product ' || g, g * 1.5 FROM generate_series(1, 500) g;
INSERT INTO inventory (product_id, supplier_id, quantity) SELECT g, 1 + g % 20, g % 37 FROM generate_series(1, 500) g;
