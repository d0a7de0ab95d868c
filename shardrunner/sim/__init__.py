"""Local simulators of the chat platforms' gateways, for tests and benchmarks without a network."""
