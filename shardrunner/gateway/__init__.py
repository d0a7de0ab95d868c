"""Gateway connections: shard state machines, their rate limiters, identify queues and transports.

Data flows gateway bytes -> transport -> shard -> sink (the worker's router, in a later layer).
"""
