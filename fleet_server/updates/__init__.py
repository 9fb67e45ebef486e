"""Software updates from afar (issue 13, docs/updates.md): releases, rollouts in waves with an
error threshold, maintenance windows from each counter's timetable, bundle checks on upload.

``waves.py`` and ``rollout.py`` are pure (what to do next, from what is known); ``windows.py``
is pure over a ``CounterSchedule``; ``bundle.py`` runs ``rauc info`` on an uploaded file.
"""
