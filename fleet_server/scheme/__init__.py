"""Running the scheme: schedules, routing, appointments, agents' iCalendar feeds."""
