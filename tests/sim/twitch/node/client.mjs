// A real Twitch chat client against the shardrunner Twitch simulator; run by
// tests/sim/twitch/test_real_clients.py.
//
//   node client.mjs tmi     HOST PORT CHANNELS [LOGIN TOKEN]   (tmi.js over WebSocket; no LOGIN: anonymous)
//   node client.mjs twurple HOST -    CHANNELS LOGIN TOKEN     (@twurple/chat over plain TCP, port 6667)
//
// Prints one JSON line per event: ready, join, message (channel, id, self), sent, disconnected,
// error. Reads commands from stdin, one a line: "say CHANNEL TEXT". At end of stdin it quits and
// exits 0.
import { createInterface } from 'node:readline';

const [kind, host, port, channelList, login, token] = process.argv.slice(2);
const channels = channelList.split(',');

function out(event, fields = {}) {
	process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function fail(where, err) {
	out('error', { where, message: String(err?.stack ?? err) });
}

process.on('unhandledRejection', err => fail('unhandledRejection', err));
process.on('uncaughtException', err => fail('uncaughtException', err));

async function tmiClient() {
	const { default: tmi } = await import('tmi.js');
	const options = {
		// Kraken's emote-set lookup (api.twitch.tv) is gone and off this network.
		options: { skipUpdatingEmotesets: true },
		connection: { server: host, port: Number(port), secure: false, reconnect: true },
		channels: channels.map(c => '#' + c),
		logger: { info() {}, warn: m => process.stderr.write(`warn: ${m}\n`), error: m => process.stderr.write(`error: ${m}\n`) },
	};
	if (login) {
		options.identity = { username: login, password: `oauth:${token}` };
	}
	const client = new tmi.Client(options);
	client.on('connected', () => out('ready', { user: client.getUsername() }));
	client.on('join', (channel, username, self) => {
		if (self) out('join', { channel: channel.replace(/^#/, ''), user: username });
	});
	client.on('message', (channel, tags, text, self) => {
		out('message', { channel: channel.replace(/^#/, ''), id: tags.id ?? null, self, text });
	});
	client.on('disconnected', reason => out('disconnected', { reason: String(reason) }));
	client.on('notice', (channel, msgid, text) => out('notice', { channel, msgid, text }));
	await client.connect();
	return {
		say: async (channel, text) => {
			await client.say('#' + channel, text);
		},
		quit: async () => {
			await client.disconnect();
		},
	};
}

async function twurpleClient() {
	// No port option in ChatClient: the simulator listens on Twitch's own plain-TCP port 6667 at
	// `host`. StaticAuthProvider checks the token at /auth/validate of TWURPLE_MOCK_API_PORT.
	const { StaticAuthProvider } = await import('@twurple/auth');
	const { ChatClient } = await import('@twurple/chat');
	const authProvider = new StaticAuthProvider('simclientid', token, ['chat:read', 'chat:edit']);
	const chat = new ChatClient({
		authProvider,
		hostName: host,
		ssl: false,
		webSocket: false,
		channels,
		logger: { minLevel: 'warning' },
	});
	chat.onConnect(() => {});
	chat.onAuthenticationSuccess(() => out('ready', { user: login }));
	chat.onAuthenticationFailure((text, retries) => out('error', { where: 'auth', message: text, retries }));
	chat.onJoin((channel, user) => out('join', { channel, user }));
	chat.onMessage((channel, user, text, msg) => {
		out('message', { channel, id: msg.id, self: user === login, text });
	});
	chat.onDisconnect((manually, reason) => out('disconnected', { manually, reason: String(reason ?? '') }));
	chat.connect();
	return {
		say: async (channel, text) => {
			await chat.say(channel, text);
		},
		quit: async () => {
			chat.quit();
		},
	};
}

const client = kind === 'tmi' ? await tmiClient() : kind === 'twurple' ? await twurpleClient() : null;
if (client === null) {
	fail('args', `unknown client ${kind}`);
	process.exit(2);
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
	const [cmd, channel, ...rest] = line.trim().split(' ');
	if (cmd === 'say') {
		try {
			await client.say(channel, rest.join(' '));
			out('sent', { channel });
		} catch (err) {
			fail('say', err);
		}
	}
}
try {
	await client.quit();
} catch (err) {
	fail('quit', err);
}
out('quit');
process.exit(0);
