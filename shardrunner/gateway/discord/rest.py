"""The one REST call Discord's platform needs: ``GET /gateway/bot`` (the URL, shard count, start limit)."""

from __future__ import annotations

import msgspec

from shardrunner.gateway.platform import PlatformError


class SessionStartLimit(msgspec.Struct):
    total: int
    remaining: int
    reset_after: int
    max_concurrency: int = 1


class GatewayBot(msgspec.Struct):
    url: str
    shards: int
    session_start_limit: SessionStartLimit


class GatewayBotError(PlatformError):
    """``/gateway/bot`` could not be read; the message says why and what to do."""


async def fetch_gateway_bot(api_url: str, token: str, *, timeout: float = 15.0) -> GatewayBot:
    """Discord's gateway URL, recommended shard count and session start limit for this token."""
    # Imported here: only the supervisor asks, and a worker (which imports this module with its
    # platform) would otherwise carry aiohttp in its memory for nothing.
    import aiohttp

    url = api_url.rstrip("/") + "/gateway/bot"
    headers = {"Authorization": f"Bot {token}", "User-Agent": "DiscordBot (shardrunner, 0.1)"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url, headers=headers) as response,
        ):
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GatewayBotError(f"cannot reach {url}: {exc or type(exc).__name__}; check --api-url") from None
    if status == 401:
        raise GatewayBotError(
            "Discord rejected the token (401 from GET /gateway/bot): check --token or SHARDRUNNER_TOKEN"
        )
    if status != 200:
        raise GatewayBotError(f"GET {url} answered {status}: {body[:200].decode(errors='replace')}")
    try:
        return msgspec.json.decode(body, type=GatewayBot)
    except msgspec.DecodeError as exc:
        raise GatewayBotError(
            f"GET {url} answered something that is not a gateway description: {exc}"
        ) from None
