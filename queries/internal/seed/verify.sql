-- Demo data generator: fingerprints of the generated rows, to prove determinism.

-- name: checksums
-- md5 over every row of each backend table in key order: equal seeds and anchors give equal checksums.
SELECT 'users' AS table_name, count(*) AS row_count, md5(string_agg(t::text, E'\n' ORDER BY t.id)) AS checksum FROM users t
UNION ALL
SELECT 'models', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM models t
UNION ALL
SELECT 'products', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM products t
UNION ALL
SELECT 'purchases', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM purchases t
UNION ALL
SELECT 'quota_log', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM quota_log t
UNION ALL
SELECT 'video_jobs', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM video_jobs t
UNION ALL
SELECT 'error_log', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM error_log t
UNION ALL
SELECT 'rate_limit_log', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM rate_limit_log t
UNION ALL
SELECT 'idempotency_keys', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.key)) FROM idempotency_keys t
UNION ALL
SELECT 'admin_actions', count(*), md5(string_agg(t::text, E'\n' ORDER BY t.id)) FROM admin_actions t

-- name: definitions
-- Keys, foreign keys, checks and indexes of the backend tables, as the catalog defines them (the generator
-- drops and rebuilds them around its load: they must come back exactly as queries/schema.sql made them).
SELECT c.conrelid::regclass::text AS table_name, 'constraint' AS kind, c.conname::text AS name,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
WHERE c.conrelid IN (SELECT to_regclass(n) FROM unnest(ARRAY['users', 'models', 'products', 'purchases', 'quota_log',
                         'video_jobs', 'error_log', 'rate_limit_log', 'idempotency_keys', 'admin_actions']) AS n)
UNION ALL
SELECT i.indrelid::regclass::text, 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid IN (SELECT to_regclass(n) FROM unnest(ARRAY['users', 'models', 'products', 'purchases', 'quota_log',
                         'video_jobs', 'error_log', 'rate_limit_log', 'idempotency_keys', 'admin_actions']) AS n)
ORDER BY 1, 2, 3
