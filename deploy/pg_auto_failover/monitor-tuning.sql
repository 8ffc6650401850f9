-- Run on the monitor (database pg_auto_failover). The defaults promote the standby ~30 s after the primary
-- dies; these bring it to ~8-10 s on a campus LAN (measured by bench/db_failover.py: the kill to the first
-- order placed again). Values in milliseconds; they take effect on reload.
ALTER SYSTEM SET pgautofailover.health_check_period = 1000;
ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000;
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500;
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 3000;
-- How long the monitor waits for a vanished primary to confirm its demotion before promoting the standby
-- (default 30 s). The old primary's keeper demotes itself when it can reach neither the monitor nor the
-- standby (its network-partition timeout), so a short wait here does not risk two primaries taking writes.
ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 5000;
SELECT pg_reload_conf();
