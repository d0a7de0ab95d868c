"""What a bot process imports: events from a running cluster, commands back to its connections.

```python
from shardrunner.client import Client

async def main() -> None:
    async with Client(group="my-bot", events=["MESSAGE_CREATE"]) as client:
        async for event in client:
            print(event.conn, event.seq, event.data["content"])
```

The client finds the cluster through its run directory (like ``shardrunner status``), asks the
supervisor every second where the workers are, connects to each, and joins the consumer group
there. Events come as an async iterator or to handlers registered with :meth:`Client.on`. An event
counts as processed when the iterator is asked for the next one (or its handler returned); the
client then acknowledges it, in batches. Duplicates (possible only after a failure, e.g. a worker
crash and a replay) are dropped by ``(conn, session, seq)``, and during a reshard's switch the
second copy of an event both shard sets delivered by its content identity, unless
``dedupe=False``. ``@client.on_shard_ready`` and its siblings (``client/lifecycle.py``) get
shardrunner's lifecycle events (a shard ready, resumed, disconnected, fatal; a reshard's switch;
Twitch's channels), typed. See docs/delivery.md and docs/resharding.md for the guarantees.

Importing it loads pyzmq, msgspec and the project's wire protocol only: neither the cluster, the
gateway, the settings nor click, psutil or the compression libraries.
"""

from __future__ import annotations

from shardrunner.client.client import Client
from shardrunner.client.errors import ClientError
from shardrunner.client.events import ClientEvent, Gap
from shardrunner.client.lifecycle import Lifecycle

__all__ = ["Client", "ClientError", "ClientEvent", "Gap", "Lifecycle"]
