"""The camera: presence (``presence``: V4L2, picamera2), frame sources for the call
(``v4l2``, ``pi_camera``, ``pattern``: PyAV lavfi test pattern), real-time pacing
(``pacing``) and the per-call media factory (``devices``)."""
