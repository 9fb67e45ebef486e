"""gpiozero: the call button, the choice buttons and the light (``devices``), the pin
factory and the technician's button-held-at-boot check (``pins``)."""
