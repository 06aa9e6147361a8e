-- description: Completed jobs that got a generation_refund: the customer kept the video and the credits.
-- severity: warning
-- offender: job_id
WITH refunds AS (
    SELECT job_id, sum(change)::bigint AS refunded, count(*) AS refund_rows, min(created_at) AS refunded_at
    FROM quota_log
    WHERE reason = 'generation_refund' AND job_id IS NOT NULL
    GROUP BY job_id
)
SELECT j.id AS job_id, j.user_id, j.provider, j.credits_used, r.refunded, r.refund_rows,
       j.completed_at, r.refunded_at
FROM refunds r
JOIN video_jobs j ON j.id = r.job_id
WHERE j.status = 'completed'
ORDER BY j.completed_at, j.id
