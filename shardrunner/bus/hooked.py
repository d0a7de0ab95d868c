"""A router with a controller's hot-path hooks: an event filter before any group, and a routing
function that may pick a group's member instead of the rendezvous owner.

A worker builds it only when its controller overrides one of them; otherwise the worker runs the
plain :class:`~shardrunner.bus.router.Router`, whose publish stays exactly as it is. Both hooks
are plain callables here (the worker wraps the controller's, to contain them) and either can be
set to None at any time (a hook turned off after a stall): the router then takes the default.

- ``accept(platform, name, key)``: a false answer drops the event before any group sees it. It is
  counted in :attr:`HookedRouter.filtered`, held by nobody, and not part of the low water, exactly
  like an event no group subscribes to.
- ``route(group, name, key, members)``: the member id that gets the event (``members`` are the
  group's members on this worker, a read-only view), or None for the rendezvous owner. It is asked
  for each event a group gets when published; events moved off a member that left go to the
  rendezvous owner, as without a controller. It must be given at construction (groups declared
  while there is none are plain groups, whose owner lookup costs nothing more).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from shardrunner.bus.groups import Group, Limits, Member
from shardrunner.bus.router import Router
from shardrunner.protocol.envelope import Event, RoutingKey

#: ``accept(platform, name, key) -> bool``
Accept = Callable[[str, str, RoutingKey], bool]
#: ``route(group, name, key, members) -> member id | None``
Route = Callable[[str, str, RoutingKey, Collection[str]], str | None]


class RoutedGroup(Group):
    """A group whose owner of the event being published may come from the router's ``route``."""

    router: HookedRouter | None = None

    def owner(self, key: object) -> Member:
        router = self.router
        if router is not None:
            event, route = router.publishing, router.route
            if event is not None and route is not None:
                member = route(self.name, event.name, event.key, self.members.keys())
                if member is not None:
                    chosen = self.members.get(member)
                    if chosen is not None:
                        return chosen
        return Group.owner(self, key)


class HookedRouter(Router):
    """:class:`~shardrunner.bus.router.Router` with :attr:`accept` and :attr:`route` (see the module)."""

    def __init__(
        self,
        limits: Limits | None = None,
        member_timeout: float = 5.0,
        *,
        accept: Accept | None = None,
        route: Route | None = None,
    ) -> None:
        super().__init__(limits, member_timeout)
        self.accept = accept
        self.route = route
        #: Events the filter dropped.
        self.filtered = 0
        #: The event being published (what :class:`RoutedGroup` asks ``route`` about), else None.
        self.publishing: Event | None = None

    def declare(self, name: str, events: Iterable[str] | None) -> Group:
        if self.route is None:  # no routing function (given at construction): the plain groups
            return Router.declare(self, name, events)
        group = self.groups.get(name)
        if group is None:
            routed = RoutedGroup(name, self.limits, None if events is None else frozenset(events))
            routed.router = self
            group = self.groups[name] = routed
            self._by_name.clear()
        return group

    def publish(self, event: Event) -> None:
        accept = self.accept
        if accept is not None and not accept(event.conn.platform, event.name, event.key):
            self.filtered += 1
            return
        if self.route is None:
            Router.publish(self, event)
            return
        self.publishing = event
        try:
            Router.publish(self, event)
        finally:
            self.publishing = None
