// tmi.js 1.8.5 reading channels of the shardrunner Twitch chat simulator; run by benchmarks/twitch.py.
//
//   node tmi_bench.mjs HOST PORT CHANNELS_FILE IDS_OUT JOIN
//
// One tmi.Client over WebSocket, anonymous (tmi.js logs in as justinfan<digits> without an
// identity), joining every channel of CHANNELS_FILE (names, one a line). JOIN says how:
//   "direct":  no channels in the options; once connected, client.join() of every channel at once
//              (tmi.js's public API, which sends the JOIN without its timer);
//   "timer:MS": the channels in the options, joined by tmi.js's own queue, one every MS ms
//              (its joinInterval option; 2000 by default, 300 at least).
// Counts the id tag of every PRIVMSG (tmi.js's 'message', or 'cheer' for one with bits) and
// USERNOTICE ('subscription', 'resub', 'subgift' and 'raided', the kinds the simulator generates),
// once per id; a second copy counts as a duplicate. Prints one JSON object per line on stdout; times are process.hrtime (CLOCK_MONOTONIC
// on Linux) in seconds, comparable with Python's time.monotonic():
//   {"event":"ready","t":t}                                   connected (376)
//   {"event":"joined","count":N,"t":t}                        after each of its own JOINs came back
//   {"event":"progress","count":N,"dups":D,"first":t,"last":t}  every 0.25 s while ids arrive
//   {"event":"disconnected","reason":R,"t":t}
// At the end of stdin it writes the ids it got to IDS_OUT (one a line), prints
// {"event":"done",...} like progress, and exits 0.
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import tmi from 'tmi.js';

const [host, port, channelsFile, idsOut, join] = process.argv.slice(2);
const channels = readFileSync(channelsFile, 'utf8').split('\n').map(s => s.trim()).filter(Boolean);

function now() {
	return Number(process.hrtime.bigint()) / 1e9;
}

function emit(record) {
	process.stdout.write(JSON.stringify(record) + '\n');
}

const seen = new Set();
let dups = 0;
let first = 0;
let last = 0;
let joined = 0;
let reported = -1;

function got(tags) {
	const id = tags && tags.id;
	if (!id) return;
	last = now();
	if (first === 0) first = last;
	if (seen.has(id)) dups++;
	else seen.add(id);
}

const timer = join.startsWith('timer:');
const client = new tmi.Client({
	options: { skipUpdatingEmotesets: true, joinInterval: timer ? Number(join.slice(6)) : 2000 },
	connection: { server: host, port: Number(port), secure: false, reconnect: true },
	channels: timer ? channels.map(c => '#' + c) : [],
	logger: { info() {}, warn() {}, error: m => process.stderr.write(`error: ${m}\n`) },
});
client.on('message', (channel, tags) => got(tags));
client.on('cheer', (channel, tags) => got(tags));
client.on('subscription', (channel, username, methods, msg, tags) => got(tags));
client.on('resub', (channel, username, months, msg, tags) => got(tags));
client.on('subgift', (channel, username, months, recipient, methods, tags) => got(tags));
client.on('raided', (channel, username, viewers, tags) => got(tags));
client.on('join', (channel, username, self) => {
	if (self) emit({ event: 'joined', count: ++joined, t: now() });
});
client.on('disconnected', reason => emit({ event: 'disconnected', reason: String(reason), t: now() }));
client.on('connected', () => {
	emit({ event: 'ready', t: now() });
	if (!timer) {
		for (const c of channels) client.join('#' + c).catch(() => {});
	}
});
setInterval(() => {
	if (seen.size + dups !== reported) {
		reported = seen.size + dups;
		emit({ event: 'progress', count: seen.size, dups, first, last });
	}
}, 250).unref();
client.connect().catch(err => emit({ event: 'error', message: String(err) }));

const lines = createInterface({ input: process.stdin });
for await (const _ of lines) {
	// Nothing to do: the end of stdin ends the run.
}
writeFileSync(idsOut, [...seen].join('\n') + '\n');
emit({ event: 'done', count: seen.size, dups, first, last });
process.exit(0);
