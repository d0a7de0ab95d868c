"""Twitch's discovery: the ``twitch`` section of the settings read into a :class:`~.plan.TwitchPlan`
(accounts and their tokens, channels from the list and the file, moderators, verified bots, limits).
Nothing is asked of Twitch: its chat has no endpoint that says what to run."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shardrunner.gateway.platform import PlatformError
from shardrunner.gateway.twitch.placement import PlacementError
from shardrunner.gateway.twitch.plan import TwitchPlan
from shardrunner.protocol.twitch import TwitchLimits, read_names


class TwitchSettings(Protocol):
    """The settings Twitch's discovery reads (the ``twitch`` section)."""

    twitch_accounts: str
    twitch_accounts_file: str | None
    twitch_channels: str
    twitch_channels_file: str | None
    twitch_anonymous: bool
    twitch_channels_per_conn: int
    twitch_max_rate: float
    twitch_backup_readers: bool
    twitch_backup_url: str | None
    twitch_spare_readers: int | None
    twitch_verified: str
    twitch_moderates: str
    twitch_senders: str
    twitch_send_queue: int
    twitch_bypass_duplicates: bool
    twitch_url: str
    twitch_join_limit: int
    twitch_login_limit: int
    twitch_message_limit: int
    twitch_mod_message_limit: int
    twitch_channel_interval: float
    twitch_channel_limit: int
    twitch_join_window: float
    twitch_message_window: float
    workers: int


async def discover_from(settings: TwitchSettings) -> TwitchPlan:
    """The plan of the ``twitch`` settings (PlatformError in one sentence for what cannot run)."""
    s = settings
    accounts = _pairs(s.twitch_accounts)
    if s.twitch_accounts_file:
        accounts.update(_pairs(",".join(_lines(s.twitch_accounts_file, "--twitch-accounts-file"))))
    channels = [c for c in s.twitch_channels.split(",") if c]
    if s.twitch_channels_file:
        channels += _lines(s.twitch_channels_file, "--twitch-channels-file")
    moderates: dict[str, list[str]] = {}
    for login, channel in (p.split(":", 1) for p in s.twitch_moderates.split(",") if p):
        moderates.setdefault(login, []).append(channel)
    limits = TwitchLimits(
        login_count=s.twitch_login_limit,
        join_count=s.twitch_join_limit,
        privmsg_count=s.twitch_message_limit,
        privmsg_mod_count=s.twitch_mod_message_limit,
        channel_interval=s.twitch_channel_interval,
        max_channels=s.twitch_channel_limit,
    ).with_windows(s.twitch_join_window, s.twitch_message_window)
    try:
        return TwitchPlan(
            accounts=accounts,
            channels=channels,
            url=s.twitch_url,
            backup_url=s.twitch_backup_url,
            anonymous=s.twitch_anonymous,
            per_conn=s.twitch_channels_per_conn,
            max_rate=s.twitch_max_rate,
            backup=s.twitch_backup_readers,
            spare=s.twitch_spare_readers,
            verified=[v for v in s.twitch_verified.split(",") if v],
            moderates=moderates,
            senders=[v for v in s.twitch_senders.split(",") if v] or None,
            limits=limits,
            send_queue=s.twitch_send_queue,
            bypass_duplicates=s.twitch_bypass_duplicates,
            workers=s.workers,
        )
    except PlacementError as exc:
        raise PlatformError(str(exc)) from None


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        login, _, token = item.partition(":")
        out[login.strip().lower()] = token.strip().removeprefix("oauth:")
    return out


def _lines(path: str, option: str) -> list[str]:
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise PlatformError(f"{option}: cannot read {path} ({exc.strerror})") from None
    return read_names(text)
