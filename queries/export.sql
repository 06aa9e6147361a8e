-- Raw rows for export (`opsbench query export.NAME --format csv > file`).
--
-- These return one row per backend row, possibly millions: the CSV format
-- streams them through a server-side cursor in chunks, so memory stays flat
-- whatever the size. Rows come in created_at order, read along the
-- created_at index (no server-side sort of the whole window).
-- Windows are local days in `tz`, turned into a UTC range so the index is used.


-- name: ledger
-- Credit ledger rows (quota_log) created in the window, oldest first.
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: id, created_at, user_id, change, reason, transaction_id, job_id (as stored).
WITH win AS (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT q.id, q.created_at, q.user_id, q.change, q.reason, q.transaction_id, q.job_id
FROM win w
JOIN quota_log q ON q.created_at >= w.lo AND q.created_at < w.hi
ORDER BY q.created_at, q.id;


-- name: jobs
-- Video jobs created in the window, oldest first (prompt and error text left out; see users.jobs for one user).
-- :param start date       first local day (inclusive)
-- :param end date         last local day (inclusive)
-- :param tz tz = REPORT_TZ      IANA zone the days are cut in
--
-- Columns: id, created_at, started_at, completed_at, user_id, model_id, provider, status, credits_used, error_code.
WITH win AS (
    SELECT CAST(CAST(:start AS date) AS timestamp) AT TIME ZONE CAST(:tz AS text)   AS lo,
           CAST(CAST(:end AS date) + 1 AS timestamp) AT TIME ZONE CAST(:tz AS text) AS hi
)
SELECT j.id, j.created_at, j.started_at, j.completed_at, j.user_id, j.model_id, j.provider, j.status,
       j.credits_used, j.error_code
FROM win w
JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
ORDER BY j.created_at, j.id;
