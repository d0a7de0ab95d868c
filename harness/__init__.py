"""Real processes for the tests and the benchmarks alike: a `shardrunner start` process
(`harness.cluster`), bot processes (`harness.bots`, with the JSON lines their programs print in
`harness.lines`), and the process, port and CPU helpers under them (`harness.procs`).

The package is found from the repository's root, like `tests` and `benchmarks`; it imports
neither. This file imports nothing, so that a bot program importing `harness.lines` stays light.
"""
