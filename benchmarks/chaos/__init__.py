"""The chaos soak: several hosts, both platforms, bots in two groups, constant traffic, and a seeded
schedule of failures; at the end every event is counted against the simulators.

What runs (every process its own, on 127.0.0.1, each logging into OUT/logs/): one Discord simulator
(live mode, 4 shards of 3 guilds, one identify bucket with a 0.5 s window, heartbeats every 10 s,
``--track-dispatches`` so that every dispatch has an id across sessions); one Twitch simulator (20
channels); one redis-server (a password, an append-only file); 3 hosts ``shardrunner start
--coordinator ... --platforms discord,twitch --workers 2 --lease-ttl TTL`` (TTL: ``--ttl``, 5 s by
default; 2 active, 1 ``--standby``; anonymous Twitch readers, 5 channels a connection, backup
readers); 3 bot processes (benchmarks/chaos/bot.py): ``a`` alone in group ``chaos-a``, ``b1`` and
``b2`` sharing ``chaos-b``; both groups are declared with ``--groups`` and hold 1,000,000 events a
worker (sized for any outage here). Each bot writes down every event it processes, after the
client's dedupe.

Traffic: constant, 25 dispatches per second per Discord shard (100/s) and 50 chat lines per second
over the Twitch channels: everything above runs on a 2-core machine shared with other work, and a
rate the machine carries with every process busy is what makes the counts mean something (a
starved process looks like a fault). --discord-rate and --twitch-rate change it.

The schedule (seeded: ``--seed`` fixes it; OUT/actions.jsonl logs each action with its wall time,
target and outcome): rounds of every action kind, each round shuffled, one action every
``--interval`` seconds: kill -9 of a worker, of a bot (restarted 1-4 s later with the same member
id), of an active host's supervisor (its workers are left to stop on their own; the standby takes
over; a new standby host starts TTL + 1 s later), of redis-server (restarted 1-2.5 s later on the
same port, with its data or emptied: an outage below the lease TTL minus its margin); SIGSTOP of a
worker or a supervisor for less than TTL / 2 or for more than the TTL, then SIGCONT; ``shardrunner
reload`` of a host; every Discord simulator fault (op 7, op 9 resumable and not, drop, close 4000,
zombie, stall, garbage) on a random shard and every Twitch one (RECONNECT, drop, stall, PONG loss,
server change) on a random connection or channel. ``shardrunner reshard`` is refused while
``--coordinator`` is set (docs/hosts.md, "Limits today"), so the run has none.

The end: the traffic stops, the schedule's restarts finish, and the run waits (condition, with a
deadline) until every shard has a live connected session and each group holds every Discord id it
should and every Twitch id, or nothing arrives for 3 s (a lost chat line has no replay to wait
for); then it counts, against ``GET /_sim/stats`` and ``/_sim/dispatches`` of the simulators and
the bots' records, per group: events lost (Discord: dispatch ids some session wrote to its
connection, i.e. up to its ``last_sent_seq``, that the group never got; Twitch: ids of the
channels' ``ids``), duplicates after the client's dedupe (an id twice within one bot process),
copies across processes (redeliveries after a kill: at-least-once, reported, not errors); identify
violations (Discord simulator) and JOIN/login violations (Twitch simulator); wasted identifies (an
accepted IDENTIFY whose record lists a session of its shard that was still resumable); the longest
delivery gap during the traffic, per stream (a Discord shard, a Twitch channel) and for the whole
group; the RSS high-water of every process (psutil, every 0.5 s) by role; crashes (workers that
died other than by the schedule's kill -9, processes that exited by themselves, tracebacks in any
log). Every output (logs, the status command's JSON, a metrics scrape, the state files, every
command line) is in OUT, and OUT is scanned for the raw token and Redis password. A summary table
is printed, OUT/result.json written; the exit status is 1 when a must-be-zero count is not.

Run: python -m benchmarks.chaos --minutes M [--seed S] [--out DIR] (or --seconds N)
"""
