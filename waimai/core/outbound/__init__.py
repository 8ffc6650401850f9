"""Outbound calls: the `Dependency` every call to another system goes through (bulkhead, breaker, retries
within a budget, timeout), its breaker stores' interface and its instruments.

A library for every layer: the platform's payment and intake clients and the firewall's notification
channels use it; the firewall's resilience package adds the shared breaker stores, the automatic switches
and the ops API on top (waimai/firewall/resilience).
"""
