"""The JSON API: the fleet read API, metrics, and counters' enrolment."""
