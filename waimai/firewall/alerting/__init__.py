"""Multi-level alerting for the fault firewall (issue 6): notification channels live in `channels`."""
