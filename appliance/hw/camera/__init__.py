"""The camera: presence (``presence``: V4L2, picamera2), frame sources for the call
(``v4l2``, ``pi_camera``, ``pattern``: PyAV lavfi test pattern, paced by
``appliance.hw.pacing``, which the test tone shares) and the per-call media factory
(``devices``)."""
