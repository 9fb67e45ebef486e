"""What the counter's screen shows: one scene per ``ScreenState``, drawn with pygame.

Only ``appliance.hw.screen_pygame`` imports these modules (lazily, in its render thread),
so ``import appliance`` works without pygame. ``texts`` and ``theme`` import nothing
graphical; ``draw``, ``scenes``, ``video`` and ``renderer`` need pygame (and PyAV).
"""
