"""Users and authentication, counters' enrolment, the audit log."""
