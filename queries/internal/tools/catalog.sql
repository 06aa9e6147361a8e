-- Catalog look-ups for ops/workbench/index_doctor.py. Not a query subject.

-- name: table_rows
-- Estimated rows of each ordinary table in the search path (pg_class.reltuples; -1 = never analysed).
SELECT c.relname AS table_name, n.nspname AS schema_name, CAST(c.reltuples AS bigint) AS est_rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname = ANY (current_schemas(false))

-- name: table_indexes
-- Valid indexes of every table in the search path: leading column and partial predicate.
SELECT t.relname AS table_name,
       i.relname AS index_name,
       a.attname AS leading_column,
       pg_get_expr(x.indpred, x.indrelid) AS predicate
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
WHERE x.indisvalid
  AND n.nspname = ANY (current_schemas(false))

-- name: table_columns
-- Column names of every table in the search path.
SELECT c.relname AS table_name, a.attname AS column_name
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname = ANY (current_schemas(false))
