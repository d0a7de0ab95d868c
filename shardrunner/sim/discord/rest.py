"""The REST endpoints clients call before connecting: ``/api/v9`` and ``/api/v10``.

``GET /gateway``, ``GET /gateway/bot`` (the shard count and the session start limit),
``GET /users/@me`` and the application; anything else under ``/api`` is a JSON 404.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web

from shardrunner.sim.discord.world import token_user_id

if TYPE_CHECKING:
    from shardrunner.sim.discord.server import Simulator

_encode = msgspec.json.encode
JSON: Final = "application/json"


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON response with the rate-limit headers Discord sends (some clients read them)."""
    # Exactly "application/json": some clients compare the header for equality.
    return web.Response(
        body=_encode(body),
        status=status,
        headers={
            "Content-Type": JSON,
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset-After": "1.0",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Bucket": "shardrunner-sim",
        },
    )


class Rest:
    """The REST handlers of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def add_routes(self, app: web.Application) -> None:
        for v in ("v9", "v10"):
            prefix = f"/api/{v}"
            app.router.add_get(prefix + "/gateway", self.gateway)
            app.router.add_get(prefix + "/gateway/bot", self.gateway_bot)
            app.router.add_get(prefix + "/users/@me", self.me)
            app.router.add_get(prefix + "/oauth2/applications/@me", self.application)
            app.router.add_get(prefix + "/applications/@me", self.application)
            app.router.add_route("*", prefix + "/{tail:.*}", self.not_found)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[4:] if header.startswith("Bot ") else header
        if token_user_id(token) is None:
            return False
        expected = self.sim.config.token
        return expected is None or token == expected.removeprefix("Bot ")

    @staticmethod
    def _unauthorized() -> web.Response:
        return json_response({"message": "401: Unauthorized", "code": 0}, 401)

    async def gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.sim.gateway_url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        sim = self.sim
        reset_after = sim.limits.reset_after(time.monotonic())
        return json_response(
            {
                "url": sim.gateway_url,
                "shards": sim.world.recommended_shards(),
                "session_start_limit": {
                    "total": sim.config.session_start_total,
                    "remaining": sim.limits.starts_remaining,
                    "reset_after": int(reset_after * 1000),
                    "max_concurrency": sim.config.max_concurrency,
                },
            }
        )

    async def me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return json_response(self.sim.world.entities.bot_user())

    async def application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return json_response(self.sim.world.entities.full_application())

    async def not_found(self, request: web.Request) -> web.Response:
        return json_response({"message": "404: Not Found", "code": 0}, 404)
