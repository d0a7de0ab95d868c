"""The event bus: every event from the workers to the bots processes, over ZeroMQ."""
