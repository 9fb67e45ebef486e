"""What the counter's screen says, state by state, without drawing it: the French texts
(``texts``) and the colours and sizes of each state (``theme``). Both import nothing
graphical; the pygame adapter (``appliance.hw.screen_pygame``) draws them.
"""
