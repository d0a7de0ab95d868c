"""What the simulated server does with each line a client sends (TWITCH.md, "Connecting",
"Joining", "Keepalive", "Limits"): CAP, PASS, NICK and the welcome, JOIN, PART, PRIVMSG with the
account's limits, PING, PONG, QUIT, and 421 for the rest.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shardrunner.protocol import irc
from shardrunner.protocol.twitch import (
    CAPS,
    ERR_UNKNOWNCOMMAND,
    IMPROPER_AUTH,
    LOGIN_FAILED,
    MAX_MESSAGE_CHARS,
    NOTICE_TEXTS,
    RPL_ENDOFNAMES,
    RPL_NAMREPLY,
    SERVER,
    WELCOME,
    is_anonymous,
    normalize_channel,
)
from shardrunner.sim.twitch.wire import line

if TYPE_CHECKING:
    from shardrunner.sim.twitch.connection import Connection
    from shardrunner.sim.twitch.server import TwitchSimulator

#: Client tags are at most this many bytes.
MAX_CLIENT_TAGS = 4094


def handle_line(sim: TwitchSimulator, conn: Connection, raw: bytes) -> None:
    conn.lines_in += 1
    try:
        if raw.startswith(b"@") and raw.find(b" ") > MAX_CLIENT_TAGS + 1:
            raise irc.IrcError(f"client tags over {MAX_CLIENT_TAGS} bytes")
        msg = irc.parse(raw)  # Twitch takes lines over 512 bytes (500 characters of text fit)
    except irc.IrcError as exc:
        sim.stats.bad_lines.append({"time": time.time(), **conn.describe(), "reason": str(exc)})
        return
    cmd = msg.command.upper()
    if cmd == "CAP":
        _cap(conn, msg)
    elif cmd == "PASS":
        conn.password = msg.params[0] if msg.params else ""
    elif cmd == "NICK":
        if conn.login is None:
            _nick(sim, conn, msg.params[0] if msg.params else "")
    elif cmd == "PING":
        if time.monotonic() >= conn.no_pong_until:
            conn.reply("PONG", [SERVER, msg.params[-1] if msg.params else SERVER])
    elif cmd == "PONG":
        conn.pong_deadline = None
        if conn.ping_sent_at is not None:
            conn.pongs += 1
            conn.pong_max = max(conn.pong_max, time.monotonic() - conn.ping_sent_at)
            conn.ping_sent_at = None
    elif cmd == "QUIT":
        conn.gone("QUIT")
        sim.loop_close(conn)
    elif conn.login is None:
        return  # nothing else before login
    elif cmd == "JOIN":
        for name in (msg.params[0] if msg.params else "").split(","):
            if name and not conn.closed:
                _join(sim, conn, normalize_channel(name))
    elif cmd == "PART":
        for name in (msg.params[0] if msg.params else "").split(","):
            if name:
                _part(sim, conn, normalize_channel(name))
    elif cmd == "PRIVMSG":
        if len(msg.params) >= 2:
            _privmsg(sim, conn, normalize_channel(msg.params[0]), msg.params[-1], msg.tags)
    else:
        conn.reply(ERR_UNKNOWNCOMMAND, [conn.user, msg.command, "Unknown command"])


def _cap(conn: Connection, msg: irc.Message) -> None:
    sub = msg.params[0].upper() if msg.params else ""
    if sub == "LS":
        conn.reply("CAP", ["*", "LS", " ".join(CAPS)])
    elif sub == "REQ":
        wanted = (msg.params[1] if len(msg.params) > 1 else "").split()
        known = [c for c in wanted if c in CAPS]
        unknown = [c for c in wanted if c not in CAPS]
        if known:
            conn.caps.update(known)
            conn.reply("CAP", ["*", "ACK", " ".join(known)])
        if unknown:
            conn.reply("CAP", ["*", "NAK", " ".join(unknown)])


def _nick(sim: TwitchSimulator, conn: Connection, nick: str) -> None:
    login = nick.lower()
    now = time.monotonic()
    if is_anonymous(login):
        conn.login, conn.anonymous = login, True
    else:
        password = conn.password
        if password is None or not password.startswith("oauth:") or not login:
            conn.notice("*", IMPROPER_AUTH)
            sim.record_login(conn, login, False, "improperly formatted auth")
            sim.loop_close(conn)
            return
        token = password.removeprefix("oauth:")
        expected = sim.config.accounts.get(login) if sim.config.accounts else token
        if expected != token or not token or sim.faults.take_login_failure(login):
            conn.notice("*", LOGIN_FAILED)
            sim.record_login(conn, login, False, "authentication failed")
            sim.loop_close(conn)
            return
        conn.login = login
    account = sim.account(login)
    if not account.logins.take(now):
        sim.violation("login_limit", conn)
        sim.record_login(conn, login, False, "login limit")
        conn.login = None
        conn.drop("login limit")
        return
    conn.account = account
    sim.record_login(conn, login, True, "anonymous" if conn.anonymous else "")
    user = conn.user
    for numeric, text in WELCOME:
        conn.reply(numeric, [user, text])
    conn.reply(
        "GLOBALUSERSTATE",
        [],
        tags={
            "badge-info": "",
            "badges": "",
            "color": "",
            "display-name": nick,
            "emote-sets": "0,300374282",
            "user-id": sim.user_id(login),
            "user-type": "",
        },
    )


def user_tags(sim: TwitchSimulator, conn: Connection, channel: str) -> dict[str, str]:
    login = conn.user
    mod = sim.config.is_moderator(login, channel)
    broadcaster = login == channel
    badges = "broadcaster/1" if broadcaster else "moderator/1" if mod else ""
    return {
        "badge-info": "",
        "badges": badges,
        "color": "",
        "display-name": login,
        "emote-sets": "0",
        "mod": "1" if mod and not broadcaster else "0",
        "subscriber": "0",
        "user-type": "mod" if mod and not broadcaster else "",
    }


def _join(sim: TwitchSimulator, conn: Connection, name: str) -> None:
    account = conn.account
    assert account is not None
    now = time.monotonic()
    sim.record("joins", conn, channel=name)
    if not account.joins.take(now):
        sim.violation("join_limit", conn, channel=name)
        conn.drop("join limit")
        return
    channel = sim.channels.get(name)
    if channel is None or channel.suspended or name in sim.config.suspended:
        if channel is not None or name in sim.config.suspended:
            conn.notice("#" + name, NOTICE_TEXTS["msg_channel_suspended"], "msg_channel_suspended")
        return  # an unknown channel: no reply at all
    moderated = sim.moderated(conn.user)
    if (
        not conn.anonymous  # the concurrent-channel limit is an account's; justinfan readers have none
        and name not in account.channels
        and name not in moderated
        and account.counted_channels(moderated) >= account.limits.max_channels
    ):
        conn.notice(
            channel.irc_name,
            NOTICE_TEXTS["msg_concurrent_channel_limit_reached"],
            "msg_concurrent_channel_limit_reached",
        )
        sim.violation("channel_limit", conn, channel=name)
        return
    user = conn.user
    if name not in conn.channels:
        conn.channels[name] = channel
        channel.members.add(conn)
        account.channels[name] = account.channels.get(name, 0) + 1
    host = f"{user}.tmi.twitch.tv"
    conn.reply("JOIN", [channel.irc_name], prefix=f"{user}!{user}@{host}")
    conn.reply(RPL_NAMREPLY, [user, "=", channel.irc_name, user], prefix=host)
    conn.reply(RPL_ENDOFNAMES, [user, channel.irc_name, "End of /NAMES list"], prefix=host)
    conn.reply("USERSTATE", [channel.irc_name], tags=user_tags(sim, conn, name))
    conn.reply("ROOMSTATE", [channel.irc_name], tags=sim.roomstate(channel))


def _part(sim: TwitchSimulator, conn: Connection, name: str) -> None:
    channel = conn.channels.get(name)
    if channel is None:
        return
    sim.record("parts", conn, channel=name)
    user = conn.user
    conn.reply("PART", [channel.irc_name], prefix=f"{user}!{user}@{user}.tmi.twitch.tv")
    sim.leave(conn, name)


def _privmsg(sim: TwitchSimulator, conn: Connection, name: str, text: str, tags: dict[str, str]) -> None:
    account = conn.account
    assert account is not None
    text = text[:MAX_MESSAGE_CHARS]
    now = time.monotonic()

    def refuse(reason: str, msg_id: str | None = None) -> None:
        sim.record_message(conn, name, text, reason)
        if msg_id is not None:
            conn.notice("#" + name, NOTICE_TEXTS[msg_id], msg_id)

    if conn.anonymous:
        return refuse("anonymous")
    channel = sim.channels.get(name)
    if channel is None:
        return refuse("unknown channel")
    if channel.suspended:
        return refuse("suspended", "msg_channel_suspended")
    moderator = sim.config.is_moderator(conn.user, name)
    reason = account.check_message(name, text, moderator, now)
    if reason is not None:
        if reason == "msg_ratelimit":
            sim.violation("message_limit", conn, channel=name)
        return refuse(reason, reason)
    ident = sim.traffic.uuid()
    sim.record_message(conn, name, text, None, ident)
    own = user_tags(sim, conn, name)
    conn.reply("USERSTATE", [channel.irc_name], tags={**own, "id": ident})
    user = conn.user
    out = line(
        "PRIVMSG",
        [channel.irc_name, text],
        tags={
            **{k: v for k, v in own.items() if k != "emote-sets"},
            "client-nonce": tags.get("client-nonce", ""),
            "emotes": "",
            "first-msg": "0",
            "flags": "",
            "id": ident,
            "returning-chatter": "0",
            "room-id": channel.room_id,
            "tmi-sent-ts": str(int(time.time() * 1000)),
            "turbo": "0",
            "user-id": sim.user_id(user),
        },
        prefix=f"{user}!{user}@{user}.tmi.twitch.tv",
    )
    for other in list(channel.members):
        if other is not conn:
            other.send(out)
