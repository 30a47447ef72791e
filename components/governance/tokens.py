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

**Rotation.** Tokens read from files (the ``..._FILE`` variables) are read again when the files
change: :meth:`Tokens.identify` looks at the files' modification times, sizes and inodes (and a
folder's list of files) at most every :data:`RELOAD_S` seconds, and re-reads them all when any
of these changed. So a rotated Kubernetes secret (the kubelet swaps the mounted folder's
``..data`` link) takes effect within the kubelet's sync period plus a few seconds, without a
restart: a new token works, a removed one stops working. Files that no longer make a valid set
of tokens (a malformed entry, a token given twice, a file gone) leave the last valid set in
force and are logged as an error (naming the variable and the entry, never a token) once per
change; fix them and the next check reads them. Tokens given in the environment variables
themselves cannot change while the process runs (a process's environment is fixed when it
starts): rotating one of those needs a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Mapping

__all__ = ["ENV_ADMIN", "ENV_BOARD", "ENV_TEAMS", "ENV_UPSTREAM", "RELOAD_S", "Identity", "TokenError", "Tokens",
           "bearer", "team_name"]

logger = logging.getLogger("greenkfp.gatekeeper.tokens")

ENV_TEAMS = "GREENKFP_GATEKEEPER_TOKENS"
ENV_ADMIN = "GREENKFP_GATEKEEPER_ADMIN_TOKEN"
ENV_BOARD = "GREENKFP_GATEKEEPER_BOARD_TOKENS"
ENV_UPSTREAM = "GREENKFP_KFP_TOKEN"
_FILE = "_FILE"
#: How often (seconds, at most) :meth:`Tokens.identify` looks whether token files changed.
RELOAD_S = 2.0

Role = Literal["team", "admin", "board"]
_TOKEN = re.compile(r"[\x21-\x7e]{16,4096}")
#: A team or member name: what the ledger and Kubernetes secret keys both accept.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def team_name(name: object) -> bool:
    """Whether ``name`` is a name a token can carry (a letter or digit, then letters, digits,
    ``.``, ``_`` or ``-``; at most 128 characters)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


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
class _Known:
    """One set of tokens, checked: ``name -> token`` maps and their digests."""

    teams: Mapping[str, str]
    admin: str | None
    board: Mapping[str, str]
    upstream: str | None
    entries: tuple[tuple[bytes, Identity], ...]

    @classmethod
    def of(cls, teams: Mapping[str, str], admin: str | None, board: Mapping[str, str],
           upstream: str | None) -> _Known:
        entries: list[tuple[bytes, Identity]] = []
        for role, mapping in (("team", teams), ("board", board)):
            for name, token in mapping.items():
                _check(f"{role} tokens", name, token, role)
                entries.append((_digest(token), Identity(role, name)))
        if admin is not None:
            _check("the admin token", "admin", admin, "admin")
            entries.append((_digest(admin), Identity("admin", "admin")))
        digests = [digest for digest, _ in entries]
        if len(set(digests)) != len(digests):
            raise TokenError("one token is given to two identities (teams, board members or the admin): "
                             "each needs its own")
        return cls(dict(teams), admin, dict(board), upstream, tuple(entries))


def _known_from(environ: Mapping[str, str]) -> _Known:
    return _Known.of(_read_source(environ, ENV_TEAMS, "team"), _single(environ, ENV_ADMIN),
                     _read_source(environ, ENV_BOARD, "board member"), _single(environ, ENV_UPSTREAM))


def _stamp(path: Path) -> tuple:
    """What changes when a token file or folder changes: the file's (or each file's, following
    a mounted secret's links) inode, size and modification time, and a folder's names."""
    try:
        if path.is_dir():
            return tuple((item.name, *_stamp(item)) for item in sorted(path.iterdir())
                         if not item.name.startswith(".") and item.is_file())
        status = path.stat()
        return (status.st_ino, status.st_size, status.st_mtime_ns)
    except OSError:
        return ("unreadable",)


class Tokens:
    """The gatekeeper's known tokens (see the module's docstring), kept as SHA-256 digests.

    Build one with :meth:`from_env` (its files are re-read when they change), or directly from
    ``teams`` and ``board`` (``name -> token``) and ``admin`` (fixed). ``upstream`` is the token
    the gatekeeper sends to the real KFP API.

    Raises:
        TokenError: a malformed name or token, or one token for two identities.
    """

    def __init__(self, teams: Mapping[str, str] | None = None, admin: str | None = None,
                 board: Mapping[str, str] | None = None, upstream: str | None = None):
        self._known = _Known.of(teams or {}, admin, board or {}, upstream)
        self._reload: Callable[[], _Known] | None = None
        self._paths: tuple[Path, ...] = ()
        self._stamps: tuple = ()
        self._every_s = RELOAD_S
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, reload_s: float = RELOAD_S) -> Tokens:
        """The tokens of the environment variables (and files) in the module's docstring; the
        files are read again when they change, looked at at most every ``reload_s`` seconds."""
        environ = dict(os.environ if environ is None else environ)
        paths = tuple(Path(environ[name + _FILE].strip()) for name in (ENV_TEAMS, ENV_ADMIN, ENV_BOARD, ENV_UPSTREAM)
                      if environ.get(name + _FILE, "").strip())
        stamps = tuple(_stamp(path) for path in paths)  # before reading: a change meanwhile is read next time
        known = _known_from(environ)
        tokens = cls.__new__(cls)
        tokens._known, tokens._paths, tokens._stamps, tokens._every_s = known, paths, stamps, reload_s
        tokens._reload = (lambda: _known_from(environ)) if paths else None
        tokens._checked, tokens._lock = time.monotonic(), threading.Lock()
        return tokens

    def _current(self) -> _Known:
        """The tokens in force: the files read again first when they changed (checked at most
        every ``reload_s`` seconds)."""
        if self._reload is None or time.monotonic() - self._checked < self._every_s:
            return self._known
        with self._lock:
            now = time.monotonic()
            if now - self._checked < self._every_s:
                return self._known
            self._checked = now
            stamps = tuple(_stamp(path) for path in self._paths)
            if stamps == self._stamps:
                return self._known
            self._stamps = stamps
            try:
                known = self._reload()
            except (TokenError, OSError, UnicodeDecodeError) as exc:
                logger.error("token files changed but cannot be used; the previous tokens stay in force: %s",
                             " ".join(str(exc).split()))
                return self._known
            added = sorted(set(known.teams) - set(self._known.teams))
            removed = sorted(set(self._known.teams) - set(known.teams))
            self._known = known
            logger.info("token files changed: tokens read again (teams %s; added %s, removed %s)",
                           ", ".join(sorted(known.teams)) or "none", ", ".join(added) or "none",
                           ", ".join(removed) or "none")
            return known

    @property
    def teams(self) -> Mapping[str, str]:
        return self._current().teams

    @property
    def admin(self) -> str | None:
        return self._current().admin

    @property
    def board(self) -> Mapping[str, str]:
        return self._current().board

    @property
    def upstream(self) -> str | None:
        return self._current().upstream

    @property
    def team_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.teams))

    def identify(self, token: str | None) -> Identity | None:
        """The identity of ``token``, or None. Every known token is compared, each in constant time."""
        known = self._current()
        if not token:
            return None
        probe = _digest(token)
        found = None
        for digest, identity in known.entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, probe):
                found = identity
        return found

    def __repr__(self) -> str:
        known = self._current()
        return (f"Tokens(teams={sorted(known.teams)}, admin={'set' if known.admin else 'unset'}, "
                f"board={sorted(known.board)}, upstream={'set' if known.upstream else 'unset'})")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
