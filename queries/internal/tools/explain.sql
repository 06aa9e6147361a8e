-- Prefixes that turn a named query into its plan. Not a query subject (this
-- folder is not listed by `opsbench query --list`); used by
-- ops/workbench/index_doctor.py (`opsbench doctor --indexes`) and the benchmark (bench/).
-- Each statement here is a prefix: the named query's own SQL follows it.

-- name: plan
-- The planner's plan, without running the query.
EXPLAIN (FORMAT JSON)

-- name: analyze
-- Run the query and return its plan with timings and buffers.
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
