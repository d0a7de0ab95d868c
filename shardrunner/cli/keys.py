"""``shardrunner keys server|bot NAME``: the CURVE key pairs of bots across hosts (pyzmq's
certificate files, see :mod:`shardrunner.curve`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

_WHERE = """Which file goes where:

\b
  server.key_secret  to every host: `shardrunner start --curve-server-key PATH`
  server.key         to every bot: Client(server_key=PATH) or SHARDRUNNER_SERVER_KEY
  NAME.key_secret    to that bot only: Client(key=PATH) or SHARDRUNNER_BOT_KEY
  NAME.key           into every host's `--curve-clients` directory (it lets that bot in)

Secret files are written with mode 0600 in a directory of mode 0700.
"""

_dir_option = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the two files in (created with mode 0700).",
)
_force_option = click.option("--force", is_flag=True, help="Overwrite existing key files of that name.")


@click.group("keys", epilog=_WHERE)
def keys() -> None:
    """Make the CURVE key pairs that TCP endpoints (--bus-bind, --control-bind) require: one for the
    cluster (`keys server`), one per bot (`keys bot NAME`)."""


@keys.command("server", epilog=_WHERE)
@_dir_option
@_force_option
def server(directory: Path, force: bool) -> None:
    """Write the cluster's server key pair: DIR/server.key (public) and DIR/server.key_secret."""
    click.echo(write_pair(directory, "server", force=force))


@keys.command("bot", epilog=_WHERE)
@click.argument("name")
@_dir_option
@_force_option
def bot(name: str, directory: Path, force: bool) -> None:
    """Write bot NAME's key pair: DIR/NAME.key (public) and DIR/NAME.key_secret."""
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name == "server":
        raise click.ClickException(
            f"a bot's name must be letters, digits, '-', '_' or '.' (and not 'server'), not {name!r}"
        )
    click.echo(write_pair(directory, name, force=force))


def write_pair(directory: Path, name: str, *, force: bool) -> str:
    """Write NAME.key and NAME.key_secret in ``directory``; returns the sentence to print."""
    from zmq.auth.certs import create_certificates

    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    existing = [str(p) for p in (public, secret) if p.exists()]
    if existing and not force:
        raise click.ClickException(
            f"{' and '.join(existing)} already exist: keep them, or pass --force to replace them "
            "(every host and bot using the old keys then needs the new ones)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        for path in (public, secret):
            path.unlink(missing_ok=True)
        old = os.umask(0o077)  # the secret is never readable by others, not even for a moment
        try:
            create_certificates(directory, name)
        finally:
            os.umask(old)
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)
    except OSError as exc:
        raise click.ClickException(f"cannot write the keys in {directory}: {exc.strerror or exc}") from None
    return f"wrote {public} (public) and {secret} (secret, mode 0600)"
