-- description: Ledger rows whose job_id points at a job that does not exist.
-- severity: warning
-- offender: ledger_id
SELECT q.id AS ledger_id, q.user_id, q.change, q.reason, q.job_id, q.created_at
FROM quota_log q
LEFT JOIN video_jobs j ON j.id = q.job_id
WHERE q.job_id IS NOT NULL AND j.id IS NULL
ORDER BY q.created_at, q.id
