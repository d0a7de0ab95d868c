"""Controllers: an operator's hooks into shardrunner (see :mod:`.base` and docs/controllers.md).

``from shardrunner.controller import Controller`` and subclass it; name the subclass in the
``controller`` setting. Importing this package loads nothing of the cluster or the gateway.
"""

from shardrunner.controller.base import Controller, FatalAction, ReshardProposal, overridden, overrides
from shardrunner.controller.guard import Guard
from shardrunner.controller.lifecycle import lifecycle_listener
from shardrunner.controller.load import ControllerError, load_controller

__all__ = [
    "Controller",
    "ControllerError",
    "FatalAction",
    "Guard",
    "ReshardProposal",
    "lifecycle_listener",
    "load_controller",
    "overridden",
    "overrides",
]
