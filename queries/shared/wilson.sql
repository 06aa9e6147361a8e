-- The error rate and its 95 % Wilson score interval: the one definition (errors.*, the
-- rollups' errors_series; jobs/metrics.py reads wilson_z from here for its own bound).
-- Pasted after `FROM <rows> x` whose rows have `jobs` (finished: completed + failed) and
-- `failed`; adds the columns r.error_rate, r.wilson_low, r.wilson_high:
--   error_rate = failed / jobs (float8)
--   centre = (p + z^2 / 2n) / (1 + z^2 / n)
--   half   = z * sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)
-- clamped to [0, 1] (guarded by CASE: GREATEST/LEAST skip NULLs and would turn "no data"
-- into 0 .. 1). With no finished jobs (n = 0) the rate and the interval are NULL, not 0:
-- nothing was measured.
-- const: wilson_z = 1.959964
CROSS JOIN LATERAL (SELECT CAST(NULLIF(x.jobs, 0) AS float8) AS n, CAST({{wilson_z}} AS float8) AS z) k
CROSS JOIN LATERAL (SELECT x.failed / k.n AS p) q
CROSS JOIN LATERAL (
    SELECT (q.p + k.z ^ 2 / (2 * k.n)) / (1 + k.z ^ 2 / k.n)                                AS centre,
           k.z * sqrt(q.p * (1 - q.p) / k.n + k.z ^ 2 / (4 * k.n ^ 2)) / (1 + k.z ^ 2 / k.n) AS half
) c
CROSS JOIN LATERAL (
    SELECT q.p                                                             AS error_rate,
           CASE WHEN q.p IS NOT NULL THEN GREATEST(0.0, c.centre - c.half) END AS wilson_low,
           CASE WHEN q.p IS NOT NULL THEN LEAST(1.0, c.centre + c.half) END    AS wilson_high
) r
