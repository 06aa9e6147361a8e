-- Who was active on which local day: the one definition of "active" (activity.*, and the user-days
-- the rollups store). A user is ACTIVE on a local day when that day they created at least one video
-- job (any status: asking for a video is using the app, whether or not the provider delivered) or
-- made at least one App Store purchase (Production or Sandbox: a TestFlight tester using the app is
-- using it; revenue is where Sandbox is excluded). Signing up alone, opening the app or reading the
-- gallery leave no row in these tables and do not count.
-- Needs the CTE `win` (tz, lo, hi: the UTC range read); defines active_days (user_id, day), one row
-- per user and local day.
active_days AS (
    SELECT j.user_id, (j.created_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN video_jobs j ON j.created_at >= w.lo AND j.created_at < w.hi
    UNION
    SELECT p.user_id, (p.purchased_at AT TIME ZONE w.tz)::date AS day
    FROM win w JOIN purchases p ON p.purchased_at >= w.lo AND p.purchased_at < w.hi
)
