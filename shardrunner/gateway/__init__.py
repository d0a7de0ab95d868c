"""Gateway connections: the platform seam (``connection.py``, ``platform.py``), transports, rate
limiters and backoff, and one package per platform (``gateway.discord``).

Data flows platform bytes -> transport -> connection -> sink (the worker's bus, a later layer).
"""
