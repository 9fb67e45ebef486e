"""The screen over SDL2 (pygame): the adapter (``adapter.PygameScreen``, its own render
thread) and the drawing code it runs there — one scene per ``ScreenState`` (``scenes``,
``choosing``), shapes and fonts (``draw``), the agent's video scaled by PyAV (``video``),
and the ``renderer`` that puts them together. What the screen says, state by state, is
kept apart from the drawing and imports nothing graphical: every French text (``texts``) and
the colours and type sizes of each state (``theme``).

Only ``adapter`` is imported from outside, and it imports the rest lazily, in its render
thread, so ``import appliance`` works without pygame.
"""
