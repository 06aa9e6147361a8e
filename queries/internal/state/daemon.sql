-- The daemon's statements on the state database: job runs, daemon instances,
-- the leader lock, and the checks behind `opsbench doctor`.

-- name: insert_run
-- Record a run that has just started (status running).
-- :param run_id uuid          the run's id
-- :param job text             job id
-- :param trigger text         schedule, catch_up or manual
-- :param started_at timestamptz  when it started
-- :param leader text          the daemon instance (or manual:<host>:<pid>) running it
INSERT INTO opsbench.job_runs (run_id, job, trigger, status, started_at, leader)
VALUES (CAST(:run_id AS uuid), :job, :trigger, 'running', :started_at, :leader)

-- name: finish_run
-- Close a running run with its outcome; a run already closed (e.g. marked timeout) is left alone.
-- :param run_id uuid          the run's id
-- :param status text          ok, failed or timeout
-- :param finished_at timestamptz  when it ended
-- :param duration_s float     wall time in seconds
-- :param summary text         one line for humans
-- :param error text = null    error text (redacted), if any
-- :param metrics text = {}    JSON object of numbers
-- :param findings int = 0     number of findings handed to the alert manager
UPDATE opsbench.job_runs
   SET status = :status, finished_at = :finished_at, duration_s = :duration_s, summary = :summary,
       error = :error, metrics = CAST(:metrics AS jsonb), findings = :findings
 WHERE run_id = CAST(:run_id AS uuid) AND status = 'running'
RETURNING run_id

-- name: insert_skipped
-- Record a run that did not start (the previous one still running, or its slot missed).
-- :param run_id uuid          the run's id
-- :param job text             job id
-- :param trigger text         schedule, catch_up or manual
-- :param at timestamptz       when it was due
-- :param summary text         why it was skipped
-- :param leader text          the daemon instance that skipped it
INSERT INTO opsbench.job_runs (run_id, job, trigger, status, started_at, finished_at, duration_s, summary, leader)
VALUES (CAST(:run_id AS uuid), :job, :trigger, 'skipped', :at, :at, 0, :summary, :leader)

-- name: insert_run_as_leader
-- Record a run that has just started, but only while the leader term is this daemon's: a deposed
-- leader that has not noticed yet inserts nothing (and so starts nothing). The share lock on the
-- term row orders this insert against a new leader's claim (`claim_term`), so the new leader's
-- look for runs still going (`foreign_runs`) sees every run the old one started.
-- :param run_id uuid          the run's id
-- :param job text             job id
-- :param trigger text         schedule or catch_up
-- :param started_at timestamptz  when it started
-- :param leader text          this daemon instance
WITH term AS (
    SELECT instance FROM opsbench.leader_term WHERE id = 1 AND instance = :leader FOR SHARE
)
INSERT INTO opsbench.job_runs (run_id, job, trigger, status, started_at, leader)
SELECT CAST(:run_id AS uuid), :job, :trigger, 'running', :started_at, :leader FROM term
RETURNING run_id

-- name: claim_term
-- A new leader takes the leader term (waits for run inserts of the previous term to commit).
-- :param instance text        this daemon instance
-- :param now timestamptz      now
INSERT INTO opsbench.leader_term (id, instance, term, since)
VALUES (1, :instance, 1, :now)
ON CONFLICT (id) DO UPDATE
   SET instance = EXCLUDED.instance, term = opsbench.leader_term.term + 1, since = EXCLUDED.since
RETURNING term

-- name: interrupt_runs
-- Close runs left `running` by daemon instances that are gone: stopped, never registered, or
-- without a heartbeat (state server clock) for grace_s seconds. Runs of live instances and
-- manual runs are left alone (see foreign_runs and close_stale_manual).
-- :param leader text          this instance, whose runs are left alone
-- :param at timestamptz       the time to close them at
-- :param grace_s float = 5    heartbeat age after which an instance counts as gone
UPDATE opsbench.job_runs r
   SET status = 'failed', finished_at = GREATEST(:at, started_at),
       duration_s = EXTRACT(EPOCH FROM (GREATEST(:at, started_at) - started_at)),
       error = 'interrupted: the daemon ' || leader || ' stopped before the run finished',
       summary = 'interrupted'
 WHERE status = 'running' AND leader <> :leader AND leader NOT LIKE 'manual:%'
   AND NOT EXISTS (
       SELECT 1 FROM opsbench.daemon_instances i
        WHERE i.instance = r.leader AND i.stopped_at IS NULL
          AND i.heartbeat_at >= clock_timestamp() - make_interval(secs => :grace_s))
RETURNING run_id, job, leader

-- name: foreign_runs
-- Runs still `running` under other daemon instances (not manual runs): a new leader waits for them.
-- :param leader text          this instance
SELECT run_id, job, leader, started_at
  FROM opsbench.job_runs
 WHERE status = 'running' AND leader <> :leader AND leader NOT LIKE 'manual:%'
 ORDER BY started_at

-- name: expire_run
-- Close one run that is still `running` (e.g. a live old leader's run past its job's timeout).
-- :param run_id uuid          the run's id
-- :param status text          timeout or failed
-- :param at timestamptz       the time to close it at
-- :param summary text         one line for humans
-- :param error text           why it was closed by someone else
UPDATE opsbench.job_runs
   SET status = :status, finished_at = GREATEST(:at, started_at),
       duration_s = EXTRACT(EPOCH FROM (GREATEST(:at, started_at) - started_at)),
       summary = :summary, error = :error
 WHERE run_id = CAST(:run_id AS uuid) AND status = 'running'
RETURNING run_id, job, leader

-- name: close_stale_manual
-- Close `opsbench run` rows still `running` well past their job's timeout: the process that ran
-- them died (a live one closes its own row, as timeout, when the timeout passes).
-- :param timeouts text        JSON object: job id -> timeout in seconds
-- :param default_s float      timeout of a job not in it
-- :param grace_s float        slack after the timeout
-- :param at timestamptz       now
UPDATE opsbench.job_runs
   SET status = 'failed', finished_at = GREATEST(:at, started_at),
       duration_s = EXTRACT(EPOCH FROM (GREATEST(:at, started_at) - started_at)),
       error = 'interrupted: the manual run by ' || leader || ' was still running long after its job''s timeout'
               || ' (the process died before the run finished)',
       summary = 'interrupted'
 WHERE status = 'running' AND leader LIKE 'manual:%'
   AND started_at + make_interval(secs => COALESCE(CAST(CAST(:timeouts AS jsonb) ->> job AS double precision),
                                                   :default_s) + :grace_s) < :at
RETURNING run_id, job, leader

-- name: last_runs
-- The latest run of each job (any status) against the backend the store describes now (none from before
-- a backend switch, opsbench.backend_since()), with the number of findings it handed to the alert manager.
SELECT DISTINCT ON (job) job, run_id, trigger, status, started_at, finished_at, duration_s, summary, error, findings
  FROM opsbench.job_runs
 WHERE started_at >= opsbench.backend_since()
 ORDER BY job, started_at DESC, run_id

-- name: last_started
-- When each job last started a real (not skipped) run; the catch-up logic compares it with the schedule.
SELECT job, max(started_at) AS started_at
  FROM opsbench.job_runs
 WHERE status <> 'skipped'
 GROUP BY job

-- name: runs
-- Recent runs, newest first, optionally of one job.
-- :param job text = null      job id, or all jobs
-- :param limit int = 50       how many rows
SELECT run_id, job, trigger, status, started_at, finished_at, duration_s, summary, error, metrics, findings, leader
  FROM opsbench.job_runs
 WHERE CAST(:job AS text) IS NULL OR job = :job
 ORDER BY started_at DESC, run_id
 LIMIT :limit

-- name: upsert_instance
-- A daemon instance says it is alive (and whether it leads).
-- :param instance text        instance id host:pid:nonce
-- :param host text            host name
-- :param pid int              process id
-- :param version text         opsbench version
-- :param environment text     ENVIRONMENT
-- :param started_at timestamptz  when the process started
-- :param now timestamptz      now
-- :param is_leader bool       holds the leader lock
-- :param leader_since timestamptz = null  when it took the lead
INSERT INTO opsbench.daemon_instances
       (instance, host, pid, version, environment, started_at, last_seen, is_leader, leader_since, heartbeat_at)
VALUES (:instance, :host, :pid, :version, :environment, :started_at, :now, :is_leader, :leader_since,
        clock_timestamp())
ON CONFLICT (instance) DO UPDATE
   SET last_seen = EXCLUDED.last_seen, is_leader = EXCLUDED.is_leader,
       leader_since = EXCLUDED.leader_since, stopped_at = NULL, heartbeat_at = EXCLUDED.heartbeat_at

-- name: stop_instance
-- A daemon instance stops cleanly.
-- :param instance text        instance id
-- :param now timestamptz      now
UPDATE opsbench.daemon_instances SET is_leader = false, stopped_at = :now, last_seen = :now
 WHERE instance = :instance

-- name: instances
-- Daemon instances seen recently, leader first.
-- :param since timestamptz    oldest last_seen to show
SELECT instance, host, pid, version, environment, started_at, last_seen, is_leader, leader_since, stopped_at
  FROM opsbench.daemon_instances
 WHERE last_seen >= :since
 ORDER BY is_leader DESC, last_seen DESC

-- name: try_lock
-- Take the session advisory lock that makes this connection the leader; true if taken.
-- :param key int              lock key
SELECT pg_try_advisory_lock(CAST(:key AS bigint)) AS locked

-- name: holds_lock
-- Whether this session still holds the leader lock.
-- :param key int              lock key
SELECT EXISTS (
    SELECT 1 FROM pg_locks
     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
       AND ((CAST(objid AS bigint)) | (CAST(classid AS bigint) << 32)) = CAST(:key AS bigint)
) AS held

-- name: unlock
-- Give up the leader lock.
-- :param key int              lock key
SELECT pg_advisory_unlock(CAST(:key AS bigint)) AS unlocked

-- name: lock_holder
-- The server process holding the leader lock, if any (tests end it to simulate a lost connection).
-- :param key int              lock key
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted
   AND ((CAST(objid AS bigint)) | (CAST(classid AS bigint) << 32)) = CAST(:key AS bigint)

-- name: terminate_backend
-- End one server process (its session and any advisory lock it holds).
-- :param pid int              server process id
SELECT pg_terminate_backend(:pid) AS terminated

-- name: backend_pid
-- The server process of this connection.
SELECT pg_backend_pid() AS pid

-- name: session_info
-- Who and where a connection is, and the session settings that enforce its role.
SELECT current_user AS usr, current_database() AS db,
       current_setting('server_version') AS server_version,
       current_setting('default_transaction_read_only') AS read_only,
       current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout

-- name: state_privileges
-- Whether the state connection may create the opsbench schema or already owns it.
SELECT has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'opsbench') AS schema_exists,
       COALESCE((SELECT has_schema_privilege('opsbench', 'CREATE')
                  WHERE EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'opsbench')), false) AS can_write_schema

-- name: server_session
-- Which server session this statement ran on (the session probe compares them across transactions).
SELECT pg_backend_pid() AS pid, (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS since

-- name: lock_holder_session
-- Who holds the leader lock: the server session's application name (the daemon's names its
-- instance), client address and session start. Without pg_read_all_stats a session of another
-- role shows no details (NULLs), only that the lock is held.
-- :param key int              lock key
SELECT l.pid, a.application_name, host(a.client_addr) AS client_addr, a.client_port, a.backend_start,
       a.usename AS user_name, a.state
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND ((CAST(l.objid AS bigint)) | (CAST(l.classid AS bigint) << 32)) = CAST(:key AS bigint)
