"""CurveZMQ key pairs for the driver bridge: ``manipstack bridge keygen DIR``.

Layout of ``DIR`` (standard ZeroMQ certificate files, as written by ``zmq.auth.create_certificates``):

- ``server.key`` / ``server.key_secret``: the server's public / secret key. The secret stays on the robot
  computer; clients need ``server.key`` to know they talk to the right server.
- ``client.key`` / ``client.key_secret``: a client's key pair, for the machine running policies.
- ``authorized/``: public keys of the clients the server accepts (``client.key`` is copied there). Add a
  further client by copying its ``*.key`` public file into this folder and restarting the server.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import tyro
import zmq.auth

from manipstack.errors import MissingInputError, OutputExistsError


@dataclass(frozen=True)
class ClientKeys:
    """What a bridge client needs: its own key pair and the server's public key (Z85-encoded bytes)."""

    public: bytes
    secret: bytes
    server_public: bytes


@dataclass(frozen=True)
class ServerKeys:
    """What a bridge server needs: its key pair and the folder of authorised client public keys."""

    public: bytes
    secret: bytes
    authorized_dir: Path


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingInputError(f"{what} not found at {path}: create keys with `manipstack bridge keygen DIR`")
    return path


def generate_keys(directory: Path, force: bool = False) -> list[Path]:
    """Write server and client key pairs into ``directory`` and authorise the client; returns the files written.

    Refuses to overwrite existing keys unless ``force`` is set (replacing keys locks out every client).
    """
    directory = Path(directory)
    names = ("server.key", "server.key_secret", "client.key", "client.key_secret")
    existing = [directory / n for n in names if (directory / n).exists()]
    if existing and not force:
        raise OutputExistsError(f"keys already exist ({', '.join(map(str, existing))}); pass --force to replace them")
    authorized = directory / "authorized"
    authorized.mkdir(parents=True, exist_ok=True)
    for stem in ("server", "client"):
        zmq.auth.create_certificates(str(directory), stem)
        os.chmod(directory / f"{stem}.key_secret", 0o600)
    shutil.copyfile(directory / "client.key", authorized / "client.key")
    return [directory / n for n in names] + [authorized / "client.key"]


def load_client_keys(directory: Path) -> ClientKeys:
    """Client key pair (``client.key_secret``) and server public key (``server.key``) from a keys folder."""
    directory = Path(directory)
    public, secret = zmq.auth.load_certificate(str(_require(directory / "client.key_secret", "client secret key")))
    server_public, _ = zmq.auth.load_certificate(str(_require(directory / "server.key", "server public key")))
    return ClientKeys(public, secret, server_public)


def load_server_keys(directory: Path) -> ServerKeys:
    """Server key pair (``server.key_secret``) and the ``authorized/`` folder from a keys folder."""
    directory = Path(directory)
    public, secret = zmq.auth.load_certificate(str(_require(directory / "server.key_secret", "server secret key")))
    authorized = directory / "authorized"
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise MissingInputError(f"no authorised client keys in {authorized}: copy a client's .key file there")
    return ServerKeys(public, secret, authorized)


@dataclass(frozen=True)
class KeygenConfig:
    """Create CurveZMQ key pairs for the driver bridge server and one client."""

    directory: tyro.conf.Positional[Path]
    """Folder to write server.key, server.key_secret, client.key, client.key_secret and authorized/ into."""
    force: bool = False
    """Replace keys that already exist (every client holding the old keys is locked out)."""


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(KeygenConfig, args=argv)
    for path in generate_keys(config.directory, force=config.force):
        print(path)


if __name__ == "__main__":
    main()
