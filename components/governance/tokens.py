"""Who is asking the gatekeeper: bearer tokens for teams, the admin and the review board.

Tokens come from the environment or from files (a mounted Kubernetes secret), never from the
command line (a process list shows it to everyone on the machine):

==================================  =====================================================
``GREENKFP_GATEKEEPER_TOKENS``      ``team=token,team2=token2``: one token per team
``GREENKFP_GATEKEEPER_TOKENS_FILE`` a file of ``team=token`` lines, or a folder with one
                                    file per team (the file's name is the team, its content
                                    the token): a Kubernetes secret mounted as a volume
``GREENKFP_GATEKEEPER_ADMIN_TOKEN`` the admin's token (limits, the board's membership);
``..._ADMIN_TOKEN_FILE``            or a file holding it
``GREENKFP_GATEKEEPER_BOARD_TOKENS`` ``member=token,...``: one per review-board member
``..._BOARD_TOKENS_FILE``           (approving exceptions, transfers); or a file or folder
``GREENKFP_KFP_TOKEN``              the bearer token the gatekeeper sends to the real KFP
``GREENKFP_KFP_TOKEN_FILE``         API (none when unset); or a file holding it
==================================  =====================================================

A token is 16 to 4,096 visible ASCII characters; one token names one identity (a token given
twice is refused, it would make the identity ambiguous). Lookups compare a request's token with
every known token in constant time (:func:`hmac.compare_digest` of SHA-256 digests), so the
time taken says nothing about how close a guess was. Tokens never appear in a message, a
``repr`` or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

__all__ = ["ENV_ADMIN", "ENV_BOARD", "ENV_TEAMS", "ENV_UPSTREAM", "Identity", "TokenError", "Tokens", "bearer"]

ENV_TEAMS = "GREENKFP_GATEKEEPER_TOKENS"
ENV_ADMIN = "GREENKFP_GATEKEEPER_ADMIN_TOKEN"
ENV_BOARD = "GREENKFP_GATEKEEPER_BOARD_TOKENS"
ENV_UPSTREAM = "GREENKFP_KFP_TOKEN"
_FILE = "_FILE"

Role = Literal["team", "admin", "board"]
_TOKEN = re.compile(r"[\x21-\x7e]{16,4096}")
#: A team or member name: what the ledger and Kubernetes secret keys both accept.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class TokenError(ValueError):
    """Tokens that cannot be used: a malformed entry, a token too short, one given twice. The
    message names the variable or file and the entry's name, never a token."""


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: a team, the admin, or a review-board member (``name``)."""

    role: Role
    name: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _check(source: str, name: str, token: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise TokenError(f"{source}: {what} name {name[:64]!r} must be 1 to 128 letters, digits, '.', '_' or '-'")
    if not _TOKEN.fullmatch(token):
        raise TokenError(f"{source}: the token of {what} {name!r} must be 16 to 4,096 visible ASCII characters "
                         f"(no spaces), got {len(token)} characters")


def _pairs(text: str, source: str, what: str, separators: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, item in enumerate(re.split(separators, text), start=1):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        name, sep, token = item.partition("=")
        name, token = name.strip(), token.strip()
        if not sep:
            raise TokenError(f"{source}: entry {number} must look like {what}=token (its text is not shown)")
        if name in found:
            raise TokenError(f"{source}: {what} {name!r} is given twice")
        _check(source, name, token, what)
        found[name] = token
    return found


def _read_source(environ: Mapping[str, str], variable: str, what: str) -> dict[str, str]:
    """``name -> token`` from ``variable`` (``a=x,b=y``) and ``variable_FILE`` (a file of
    ``name=token`` lines, or a folder of one file per name)."""
    found = _pairs(environ.get(variable, ""), variable, what, r",")
    path_text = environ.get(variable + _FILE, "").strip()
    if not path_text:
        return found
    path = Path(path_text)
    source = f"{variable + _FILE} ({path})"
    if path.is_dir():
        entries = {}
        for item in sorted(path.iterdir()):
            if item.name.startswith(".") or not item.is_file():  # a mounted secret's ..data links
                continue
            token = item.read_text(encoding="utf-8").strip()
            _check(source, item.name, token, what)
            entries[item.name] = token
    elif path.is_file():
        entries = _pairs(path.read_text(encoding="utf-8"), source, what, r"\r?\n")
    else:
        raise TokenError(f"{source}: no such file or folder")
    for name in entries.keys() & found.keys():
        raise TokenError(f"{variable} and {source} both give a token for {what} {name!r}")
    return {**found, **entries}


def _single(environ: Mapping[str, str], variable: str) -> str | None:
    token = environ.get(variable, "").strip()
    path_text = environ.get(variable + _FILE, "").strip()
    if token and path_text:
        raise TokenError(f"give {variable} or {variable + _FILE}, not both")
    if path_text:
        path = Path(path_text)
        if not path.is_file():
            raise TokenError(f"{variable + _FILE} ({path}): no such file")
        token = path.read_text(encoding="utf-8").strip()
    if not token:
        return None
    if not _TOKEN.fullmatch(token):
        raise TokenError(f"{variable}: the token must be 16 to 4,096 visible ASCII characters (no spaces), "
                         f"got {len(token)} characters")
    return token


@dataclass(frozen=True)
class Tokens:
    """The gatekeeper's known tokens (see the module's docstring), kept as SHA-256 digests.

    Build one with :meth:`from_env`, or directly from ``teams`` and ``board`` (``name -> token``)
    and ``admin``. ``upstream`` is the token the gatekeeper sends to the real KFP API.

    Raises:
        TokenError: a malformed name or token, or one token for two identities.
    """

    teams: Mapping[str, str] = field(default_factory=dict, repr=False)
    admin: str | None = field(default=None, repr=False)
    board: Mapping[str, str] = field(default_factory=dict, repr=False)
    upstream: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        entries: list[tuple[bytes, Identity]] = []
        for role, mapping in (("team", self.teams), ("board", self.board)):
            for name, token in mapping.items():
                _check(f"{role} tokens", name, token, role)
                entries.append((_digest(token), Identity(role, name)))
        if self.admin is not None:
            _check("the admin token", "admin", self.admin, "admin")
            entries.append((_digest(self.admin), Identity("admin", "admin")))
        digests = [digest for digest, _ in entries]
        if len(set(digests)) != len(digests):
            raise TokenError("one token is given to two identities (teams, board members or the admin): "
                             "each needs its own")
        object.__setattr__(self, "_entries", tuple(entries))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        """The tokens of the environment variables (and files) in the module's docstring."""
        environ = os.environ if environ is None else environ
        return cls(teams=_read_source(environ, ENV_TEAMS, "team"), admin=_single(environ, ENV_ADMIN),
                   board=_read_source(environ, ENV_BOARD, "board member"), upstream=_single(environ, ENV_UPSTREAM))

    @property
    def team_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.teams))

    def identify(self, token: str | None) -> Identity | None:
        """The identity of ``token``, or None. Every known token is compared, each in constant time."""
        if not token:
            return None
        probe = _digest(token)
        found = None
        for digest, identity in self._entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, probe):
                found = identity
        return found

    def __repr__(self) -> str:
        return (f"Tokens(teams={list(self.team_names)}, admin={'set' if self.admin else 'unset'}, "
                f"board={sorted(self.board)}, upstream={'set' if self.upstream else 'unset'})")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
