"""The cluster runtime: a supervisor that spawns workers, assigns them shards, owns the identify
queue, keeps workers alive and reloads them without re-identifying."""
