-- description: Unfinished or failed jobs whose generation_refund rows add up to something other than the credits the job charged (partial or excessive).
-- severity: warning
-- offender: job_id
--
-- A refund gives back exactly what the job took (video_jobs.credits_used): less
-- shorts the customer, more (or refunding twice) mints credits. Refunds of jobs
-- that no longer exist are ledger_missing_jobs' business. A completed job is owed
-- nothing, so any refund of one, whole or partial, is completed_job_refunded's
-- business alone (calling it "partial" would say the customer was shorted).
WITH refunds AS (
    SELECT job_id, sum(change)::bigint AS refunded, count(*) AS refund_rows, max(created_at) AS last_refund_at
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
    GROUP BY job_id
),
-- (the job's status is judged on the joined rows, MATERIALIZED: a filter on status pushed into the scan of
-- video_jobs would read the whole table for a column no index can narrow; the join reads only refunded jobs)
mismatched AS MATERIALIZED (
    SELECT j.id AS job_id, j.user_id, j.status, j.credits_used, r.refunded, r.refund_rows,
           r.refunded - j.credits_used AS difference,
           CASE WHEN r.refunded < j.credits_used THEN 'partial' ELSE 'excessive' END AS problem,
           j.created_at, r.last_refund_at
    FROM refunds r
    JOIN video_jobs j ON j.id = r.job_id
    WHERE r.refunded <> j.credits_used
)
SELECT job_id, user_id, status, credits_used, refunded, refund_rows, difference, problem, created_at, last_refund_at
FROM mismatched
WHERE status IS DISTINCT FROM 'completed'
ORDER BY created_at, job_id
