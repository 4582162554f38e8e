-- Sample rows that look like production data (all invented). Deterministic, so every demo run shows the same.
SELECT setseed(0.42);

INSERT INTO users (email, username, first_name, last_name, display_name, phone, date_of_birth, ssn, password_hash,
                   street_address, city, state, zip_code, created_at)
SELECT lower(f) || '.' || lower(l) || g || '@' || (ARRAY['gmail.com', 'outlook.com', 'acme.io', 'yahoo.com'])[1 + g % 4],
       lower(f) || g,
       f, l, f || ' ' || l,
       '+1-555-' || lpad((g * 7919 % 10000)::text, 4, '0'),
       date '1950-01-01' + (g * 37 % 18000),
       lpad((g * 104729 % 1000000000)::text, 9, '0'),
       '$2b$10$' || md5(g::text) || md5(l),
       (g * 13 % 9000 + 100) || ' ' || (ARRAY['Main St', 'Oak Ave', 'Pine Rd', 'Maple Dr', 'Cedar Ln'])[1 + g % 5],
       (ARRAY['Springfield', 'Portland', 'Austin', 'Denver', 'Madison', 'Columbus'])[1 + g % 6],
       (ARRAY['IL', 'OR', 'TX', 'CO', 'WI', 'OH'])[1 + g % 6],
       lpad((g * 31 % 99999)::text, 5, '0'),
       now() - (g || ' hours')::interval
  FROM generate_series(1, 2000) AS g,
       LATERAL (SELECT (ARRAY['Alice', 'Bob', 'Carol', 'David', 'Eve', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy'])[1 + g % 10] AS f,
                       (ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis'])[1 + g % 8] AS l) AS names;

INSERT INTO customers (owner_id, company_name, contact_name, contact_email, phone, billing_address, billing_city,
                       billing_state, billing_zip, tax_id, metadata, plan)
SELECT u.id, initcap(u.last_name) || ' ' || (ARRAY['Labs', 'Holdings', 'Studio', 'Logistics'])[1 + u.id % 4],
       u.first_name || ' ' || u.last_name, u.email, u.phone, u.street_address, u.city, u.state, u.zip_code,
       'US-' || lpad((u.id * 7 % 10000000)::text, 7, '0'),
       jsonb_build_object('contact', jsonb_build_object('email', u.email, 'phone', u.phone),
                          'notes', 'Call ' || u.first_name || ' before renewal', 'seats', u.id % 50),
       (ARRAY['starter', 'team', 'enterprise'])[1 + u.id % 3]
  FROM users u WHERE u.id % 4 = 0;

INSERT INTO orders (customer_id, customer_email, shipping_name, shipping_address, shipping_city, shipping_zip,
                    card_number, notes, status, amount, ordered_at)
SELECT c.id, c.contact_email, c.contact_name, c.billing_address, c.billing_city, c.billing_zip,
       '4111' || lpad((c.id * 104723 + n)::text, 12, '0'),
       'Leave at the door, ask for ' || c.contact_name,
       (ARRAY['pending', 'paid', 'shipped', 'cancelled']::order_status[])[1 + (c.id + n) % 4],
       round((10 + (c.id * n) % 990)::numeric + 0.99, 2),
       now() - ((c.id + n) || ' days')::interval
  FROM customers c, generate_series(1, 4) AS n;
