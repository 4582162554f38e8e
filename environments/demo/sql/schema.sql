-- The demo's sample SaaS database: users, customer companies and their orders. Columns with personal data are
-- listed in ../config/transforms.yml.
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  username text NOT NULL UNIQUE,
  first_name text NOT NULL,
  last_name text NOT NULL,
  display_name text,
  phone text,
  date_of_birth date,
  ssn text,
  password_hash text NOT NULL,
  street_address text,
  city text,
  state text,
  zip_code text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
  id bigserial PRIMARY KEY,
  owner_id bigint REFERENCES users (id),
  company_name text NOT NULL,
  contact_name text,
  contact_email text,
  phone text,
  billing_address text,
  billing_city text,
  billing_state text,
  billing_zip text,
  tax_id text,
  metadata jsonb NOT NULL DEFAULT '{}',
  plan text NOT NULL DEFAULT 'starter'
);

CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  customer_email text,
  shipping_name text,
  shipping_address text,
  shipping_city text,
  shipping_zip text,
  card_number text,
  notes text,
  status order_status NOT NULL DEFAULT 'pending',
  amount numeric(12, 2) NOT NULL,
  ordered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id ON orders (customer_id);
