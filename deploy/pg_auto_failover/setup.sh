#!/usr/bin/env bash
# A pg_auto_failover formation for Waimai: a monitor and two data nodes (primary + standby), three hosts.
# Debian: apt-get install postgresql-15 postgresql-15-auto-failover   (pg_autoctl; runs as the postgres user)
#
#   monitor host:  sudo -u postgres ./setup.sh monitor
#   node host A:   sudo -u postgres ./setup.sh node pg-a.campus.internal
#   node host B:   sudo -u postgres ./setup.sh node pg-b.campus.internal
#
# The first data node to register becomes the primary, the second streams from it as a standby; when the
# monitor finds the primary gone (health checks every second, see monitor-tuning.sql) it promotes the
# standby. Waimai connects to both nodes with a multi-host URL (waimai.env.example): libpq picks the one
# that accepts writes (target_session_attrs=read-write), and the pool's pre-ping replaces connections to
# a node that went away, so no Waimai process needs a restart. docs/operations.md, "When the database fails".
set -euo pipefail
PATH="/usr/lib/postgresql/15/bin:$PATH"
MONITOR_HOST=${MONITOR_HOST:-pg-monitor.campus.internal}
PGDATA_ROOT=${PGDATA_ROOT:-/var/lib/postgresql/15}
SSL=(--ssl-self-signed)   # in production prefer --ssl-ca-file/--server-cert/--server-key from your CA

case "${1:-}" in
  monitor)
    pg_autoctl create monitor --pgdata "$PGDATA_ROOT/monitor" --pgport 5432 --hostname "$MONITOR_HOST" \
      --auth scram-sha-256 "${SSL[@]}"
    pg_autoctl show systemd --pgdata "$PGDATA_ROOT/monitor" > /tmp/pgautofailover.service
    echo "install /tmp/pgautofailover.service as root, then: psql -p 5432 -d pg_auto_failover -f monitor-tuning.sql"
    ;;
  node)
    host=${2:?the host name of this data node}
    pg_autoctl create postgres --pgdata "$PGDATA_ROOT/waimai" --pgport 5432 --hostname "$host" \
      --auth scram-sha-256 "${SSL[@]}" --dbname waimai \
      --monitor "postgres://autoctl_node@$MONITOR_HOST:5432/pg_auto_failover?sslmode=require"
    pg_autoctl show systemd --pgdata "$PGDATA_ROOT/waimai" > /tmp/pgautofailover.service
    echo "install /tmp/pgautofailover.service as root; check with: pg_autoctl show state --pgdata $PGDATA_ROOT/waimai"
    ;;
  *)
    echo "usage: $0 monitor | node HOSTNAME" >&2
    exit 2
    ;;
esac
