"""``shardrunner sim twitch``: Twitch's chat server (IRC over WebSocket and TCP), for tests and
benchmarks. See docs/simulator-twitch.md."""
