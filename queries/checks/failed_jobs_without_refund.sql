-- description: Failed jobs that charged credits but have no generation_refund in the ledger.
-- severity: warning
-- offender: job_id
WITH refunded AS (
    SELECT DISTINCT job_id
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
)
SELECT j.id AS job_id, j.user_id, j.provider, j.credits_used, j.error_code, j.created_at, j.completed_at
FROM video_jobs j
LEFT JOIN refunded r ON r.job_id = j.id
WHERE j.status = 'failed' AND j.credits_used > 0 AND r.job_id IS NULL
ORDER BY j.created_at, j.id
