"""Incidents: opened from P1/P2 alerts or by hand, run by a commander along an SOP, with a timeline
that records itself and MTTD / MTTA / MTTR kept per incident."""
