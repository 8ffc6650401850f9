"""Drills: a lunch rush with injected faults, end to end, with a scorecard (`waimai drill`)."""
