"""Resilience for outbound calls: timeouts, retries within a budget, bulkheads and shared circuit breakers."""
