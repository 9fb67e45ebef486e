"""Calls between counters and agents: the manager, its parties, timers and journal."""
