"""A transcript runner for IMAP sessions, for tests.

:func:`run_transcript` replays the ``C:`` lines of a transcript against one or more
:class:`~courriel.protocols.imap.session.ImapSession` objects and checks the ``S:``
lines (what was written) and ``E:`` lines (effects other than writes).

Transcript syntax, one item per line (blank lines and ``#`` comments are ignored):

* ``C: text`` sends ``text`` + CRLF; a bare ``C:`` sends only CRLF (the end of a
  command after a literal).
* ``S: text`` is an expected output line. ``{*}`` in it matches any text
  (``S: * OK [UIDVALIDITY {*}] UIDs valid``).
* ``E: StartTls`` / ``E: Close`` / ``E: Delay(0.5)`` / ``E: WaitForChange`` are effects.
* ``X: name`` runs a step: ``idle_changed`` and ``idle_keepalive`` call the session's
  IDLE hooks; any other name is awaited from the ``steps`` mapping (deliver a message,
  let another session store flags, ...). Its output, if any, is checked like a ``C:``.
* A line may start with a session label and a space (``B C: a1 NOOP``) to talk to
  another session of ``sessions``; the first session is the default.

The greeting of every session is not part of the transcript; use :func:`render` for it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from courriel.protocols.effects import StartTls, describe_effect
from courriel.protocols.imap.actions import Action, Send, Stream, Tagged, WaitForChange
from courriel.protocols.imap.session import ImapSession

__all__ = ["exchange", "expand", "matches", "render", "run_transcript"]

_LINE = re.compile(r"^(?:(?P<label>\w+) )?(?P<kind>[CSEX]):(?: (?P<text>.*))?$")


async def expand(actions: list[Action]) -> list[Action]:
    """Write out every :class:`Stream`: its parts as Sends, the last one as Tagged."""
    out: list[Action] = []
    for action in actions:
        if not isinstance(action, Stream):
            out.append(action)
            continue
        parts = [part async for part in action.parts]
        out += [Send(data=part) for part in parts[:-1]]
        out += [Tagged(data=part) for part in parts[-1:]]
    return out


async def exchange(session: ImapSession, data: bytes) -> list[Action]:
    """Feed ``data`` and run every complete command, as the server does.

    Streams are expanded (:func:`expand`) before the commands buffered behind them run.
    """
    actions = await expand(await session.receive(data))
    while session.more and not session.closed:
        actions += await expand(await session.receive(b""))
    return actions


def render(session: ImapSession, actions: list[Action]) -> list[str]:
    """Turn actions into transcript lines (``S:`` written lines, ``E:`` effects).

    A :class:`StartTls` effect is taken as a successful handshake. Streams must have
    been expanded (:func:`expand`, :func:`exchange`).
    """
    out: list[str] = []
    for action in actions:
        assert not isinstance(action, Stream), "expand() the actions first"
        if isinstance(action, Send | Tagged):
            if not action.data:
                continue
            text = action.data.decode("utf-8", "replace")
            assert text.endswith("\r\n"), f"response not terminated by CRLF: {text!r}"
            out += [f"S: {x}" for x in text[:-2].split("\r\n")]
            continue
        if isinstance(action, WaitForChange):
            out.append("E: WaitForChange")
            continue
        effect = describe_effect(action)
        if effect is not None:
            out.append(effect)
        if isinstance(action, StartTls):
            session.tls_started()
    return out


def matches(expected: str, actual: str) -> bool:
    """True when ``actual`` fits ``expected``, where ``{*}`` stands for any text."""
    if "{*}" not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("{*}"))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


Step = Callable[[], Awaitable[object]]


async def _run_step(session: ImapSession, name: str, steps: Mapping[str, Step]) -> list[Action]:
    if name == "idle_changed":
        return await session.idle_changed()
    if name == "idle_keepalive":
        return session.idle_keepalive()
    result = await steps[name]()
    return result if isinstance(result, list) else []


async def run_transcript(
    sessions: ImapSession | Mapping[str, ImapSession],
    transcript: str,
    *,
    steps: Mapping[str, Step] | None = None,
) -> None:
    """Replay the ``C:`` and ``X:`` lines of ``transcript`` and check everything else.

    Args:
        sessions: one session, or sessions by label (the first is the default).
        transcript: the transcript text (see the module docstring).
        steps: named coroutines for ``X:`` lines.

    Raises:
        AssertionError: the sessions' output differs; the message shows both.
    """
    by_label = {"": sessions} if isinstance(sessions, ImapSession) else dict(sessions)
    default = next(iter(by_label))
    expected: list[str] = []
    actual: list[str] = []
    for raw in transcript.strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m is not None, f"not a transcript line: {line!r}"
        label = m.group("label") or default
        prefix = f"{m.group('label')} " if m.group("label") else ""
        expected.append(line)
        kind, text = m.group("kind"), m.group("text") or ""
        session = by_label[label]
        if kind == "C":
            actual.append(line)
            actions = await exchange(session, text.encode("utf-8") + b"\r\n")
        elif kind == "X":
            actual.append(line)
            actions = await expand(await _run_step(session, text, steps or {}))
        else:
            continue
        actual += [prefix + x for x in render(session, actions)]
    _compare(expected, actual)


def _compare(expected: list[str], actual: list[str]) -> None:
    actual = [a.rstrip() for a in actual]
    same = len(expected) == len(actual) and all(
        matches(e, a) for e, a in zip(expected, actual, strict=True)
    )
    if same:
        return
    report = [
        f"{'  ' if i < len(expected) and matches(expected[i], a) else '!!'} {a}"
        for i, a in enumerate(actual)
    ]
    raise AssertionError(
        "transcript differs:\n" + "\n".join(report) + "\n-- expected --\n" + "\n".join(expected)
    )
