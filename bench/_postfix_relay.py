"""A private Postfix relaying to the benchmark's sinks, for ``bench/delivery.py``.

It is :class:`postfix_sink.PostfixSink` (own folder, ``postfix -c DIR``, loopback only, no
DNS, never the system instance) with these changes to its ``main.cf``:

* ``transport_maps``: each destination domain ``dN.test`` goes to ``smtp:[127.0.0.(N+2)]:PORT``,
  its sink, by IP literal (no MX lookup; courriel does the DNS work, Postfix does not);
* ``smtpd_end_of_data_restrictions = check_client_access static:HOLD``: every injected
  message waits in the hold queue, so injection is not timed; :meth:`PostfixRelay.release`
  moves them all to the deferred queue and flushes it, and the clock starts;
* ``in_flow_delay = 0s``: injection is not slowed by the flow control meant for delivery
  falling behind (the hold queue is never delivered from while injecting);
* ``smtp_tls_security_level = none``: the sinks offer no STARTTLS anyway.

Delivery concurrency and connection caching stay at Postfix's defaults
(``default_destination_concurrency_limit = 20``, ``smtp_connection_cache_on_demand``).

Invariants: as ``postfix_sink.py``: start and stop only through ``postfix -c DIR``, and a
started instance is always stopped (context manager). Needs root.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from postfix_sink import PostfixSink

from courriel.errors import ListenerError

__all__ = ["PostfixRelay", "process_tree", "tree_pss_kib"]

_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")


class PostfixRelay(PostfixSink):
    """A private Postfix whose smtpd (on ``127.0.0.1:port``) holds mail for relaying."""

    def __init__(
        self, root: Path, port: int, *, routes: Sequence[tuple[str, str]], sink_port: int
    ) -> None:
        super().__init__(root, port)
        self.routes = tuple(routes)  # (domain, sink address)
        self.sink_port = sink_port

    def write_config(self) -> None:
        """``postfix_sink``'s configuration with the relay settings above."""
        super().write_config()
        transport = self.config_dir / "transport"
        transport.write_text(
            "".join(f"{d} smtp:[{ip}]:{self.sink_port}\n" for d, ip in self.routes),
            encoding="utf-8",
        )
        main_cf = self.config_dir / "main.cf"
        settings = dict(
            line.split(" = ", 1) for line in main_cf.read_text(encoding="utf-8").splitlines()
        )
        settings.update(
            {
                "transport_maps": f"texthash:{transport}",
                "smtpd_end_of_data_restrictions": "check_client_access static:HOLD",
                "in_flow_delay": "0s",
                "smtp_tls_security_level": "none",
                "smtp_helo_name": "postfix.bench.localhost",
            }
        )
        main_cf.write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items()), encoding="utf-8"
        )

    def _run(self, command: str, *args: str) -> str:
        result = subprocess.run(
            [f"/usr/sbin/{command}", "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise ListenerError(f"{command} {' '.join(args)} failed: {last}; see {self.log}")
        return result.stdout

    def held(self) -> int:
        """Messages in the hold queue."""
        return _count_files(self.root / "spool" / "hold")

    def queued(self) -> int:
        """Messages anywhere in the queue (hold included)."""
        return sum(_count_files(self.root / "spool" / name) for name in _QUEUES)

    def release(self) -> None:
        """Move every held message to the deferred queue and deliver them now."""
        self._run("postsuper", "-H", "ALL")
        self._run("postqueue", "-f")

    def master_pid(self) -> int:
        """The pid of this instance's master(8)."""
        text = (self.root / "spool" / "pid" / "master.pid").read_text(encoding="ascii")
        return int(text.strip())


def _count_files(folder: Path) -> int:
    return sum(len(files) for _dir, _subdirs, files in os.walk(folder))


def process_tree(root: int) -> list[int]:
    """``root`` and every process descending from it (from /proc, Linux only)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="ascii")
        except OSError:
            continue  # the process ended while we looked
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_pss_kib(root: int) -> int:
    """Proportional set size of a process tree in KiB: shared pages are counted once."""
    total = 0
    for pid in process_tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total
