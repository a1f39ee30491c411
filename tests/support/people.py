"""Real tokens for the scenarios that name people.

SPEC §15: over HTTP the audit's ``actor`` is the bearer token's name, the bootstrap
token's (``admin``) included, and a body naming anyone else is 422. The engine scenarios
run on both workbenches and name actors (``actor="ann"``), and the API tests post bodies
naming them; over HTTP such a call must come from ann's own token. ``PeopleAuth`` is an
``httpx.Auth`` that sends a request with the bootstrap token unless its JSON body (or its
query) names someone else, and then with that person's own token, minted once per name
and server through ``POST /v1/tokens`` (role ``admin``, so a scenario's rights are
unchanged). ``PeopleWorkbench`` is the real ``RemoteWorkbench`` with that auth. The
server still checks every call: it records the name because the token says so.

``mint_people`` makes the usual cast's tokens on a store file before its server starts
(as ``opswb tokens add --db FILE`` does; the server pool copies one such store), so a
scenario comparing the store before and after a refused call sees no token minted in
between.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import orjson

import opswb
from opswb.workbench.remote import RemoteWorkbench

ROLE = "admin"
BOOTSTRAP = "admin"
ROSTER = ("ann", "bob", "alice", "carl", "carol", "dan", "dana", "erin", "ops", "a")


def mint_people(db: str, roster: tuple[str, ...] = ROSTER) -> dict[str, str]:
    """``{name: token}`` for ``roster``, minted on the store ``db`` (created if new)."""
    wb = opswb.connect(db)
    try:
        wb.init()
        return {name: wb.add_token(name, ROLE, BOOTSTRAP)["token"] for name in roster}
    finally:
        wb.close()


# {(server url, bootstrap token): {name: token}}: one token per name and server, however
# many clients and threads name that person.
_MINTED: dict[tuple[str, str], dict[str, str]] = {}
_MINTING = threading.Lock()


class PeopleAuth(httpx.Auth):
    """The bootstrap ``token``, or the own token of the actor a request names."""

    def __init__(self, url: str, token: str, people: dict[str, str] | None = None):
        self.url, self.token = url.rstrip("/"), token
        self.people = _MINTED.setdefault((self.url, token), {})
        self.people.update(people or {})

    def token_of(self, name: str) -> str:
        """``name``'s token on this server (minted on first use)."""
        with _MINTING:
            if name not in self.people:
                r = httpx.post(self.url + "/v1/tokens", json={"name": name, "role": ROLE},
                               headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
                self.people[name] = r.raise_for_status().json()["token"]
            return self.people[name]

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        name = named(request)
        token = self.token_of(name) if name and name != BOOTSTRAP else self.token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def named(request: httpx.Request) -> str:
    """The ``actor`` a request's JSON object body or query names ("" when none)."""
    actor = request.url.params.get("actor")
    if actor is None and request.headers.get("content-type") == "application/json":
        try:  # only an object that names an actor is parsed, never an array of events
            content = request.content
        except httpx.RequestNotRead:  # a streamed body
            content = b""
        if content[:1] == b"{" and b'"actor"' in content:
            body = orjson.loads(content)
            actor = body.get("actor") if isinstance(body, dict) else None
    return actor.strip() if isinstance(actor, str) else ""


class PeopleWorkbench(RemoteWorkbench):
    """A ``RemoteWorkbench`` on the bootstrap token whose calls naming an actor go out
    with that actor's own token."""

    def __init__(self, url: str, token: str, people: dict[str, str] | None = None):
        super().__init__(url, token)
        self._http.auth = PeopleAuth(url, token, people)


def decided(entries: list[dict]) -> list[dict]:
    """Audit entries without the ``tokens.add`` of the people's tokens, which a remote
    store holds from its setup: what the scenario itself recorded."""
    return [e for e in entries if e["action"] != "tokens.add"]
