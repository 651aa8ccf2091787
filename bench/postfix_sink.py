"""A private Postfix instance on loopback for ``bench/smtp_receive.py`` (Debian's package).

It never touches the system instance: configuration, queue, data, mail and log all live in
one folder of its own, given with ``postfix -c DIR``. Its smtpd listens on
``127.0.0.1:PORT`` only; the virtual mailbox domain ``bench.test`` has one mailbox,
``user@bench.test``, delivered by virtual(8) to a Maildir under the folder. No DNS is used
(``disable_dns_lookups``, ``smtp_host_lookup = native``, no peer name lookup).

Postfix answers 250 at the end of DATA only after cleanup(8) has fsynced the queue file,
which is the durable point comparable to courriel's commit. Everything else is left at
Postfix's defaults, including ``in_flow_delay`` (its flow control), on purpose.

Invariants:
    * Start and stop only with ``postfix -c DIR start|stop``; a started instance is always
      stopped by :meth:`PostfixSink.stop` (called by the context manager on any exit).
    * Starting needs root (Postfix's master runs as root and drops to ``mail_owner``).

Usage by hand::

    python bench/postfix_sink.py /tmp/pf 2526 start   # ... then: stop
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from courriel.errors import ListenerError

__all__ = ["POSTFIX", "PostfixSink", "available"]

POSTFIX = "/usr/sbin/postfix"
_SERVICES = """\
# service  type  private unpriv chroot wakeup maxproc command
{listen} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
virtual    unix  - n n - - virtual
local      unix  - n n - - local
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
"""


def available() -> bool:
    """True when Debian's postfix is installed and we may start it (root)."""
    return Path(POSTFIX).exists() and os.geteuid() == 0


def _main_cf(root: Path, port: int, processes: int) -> str:
    nobody = pwd.getpwnam("nobody")
    settings = {
        "compatibility_level": "3.6",
        "config_directory": root / "etc",
        "queue_directory": root / "spool",
        "data_directory": root / "data",
        "meta_directory": "/etc/postfix",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": "postfix.bench.localhost",
        "mydomain": "bench.localhost",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_banner": "$myhostname ESMTP",
        "master_service_disable": "",
        "default_process_limit": str(processes),
        # No DNS anywhere: nothing leaves this machine.
        "disable_dns_lookups": "yes",
        "smtp_host_lookup": "native",
        "lmtp_host_lookup": "native",
        "smtpd_peername_lookup": "no",
        "relayhost": "",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "biff": "no",
        "append_dot_mydomain": "no",
        "virtual_mailbox_domains": "bench.test",
        "virtual_mailbox_base": root / "mail",
        "virtual_mailbox_maps": "inline:{ user@bench.test=user/ }",
        "virtual_uid_maps": f"static:{nobody.pw_uid}",
        "virtual_gid_maps": f"static:{nobody.pw_gid}",
        "maillog_file": root / "maillog",
        "maillog_file_prefixes": root,
    }
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


class PostfixSink:
    """One private Postfix instance in ``root``, listening on ``127.0.0.1:port``."""

    def __init__(self, root: Path, port: int, *, processes: int = 100) -> None:
        self.root = root
        self.port = port
        self.processes = max(processes, 100)
        self.started = False

    @property
    def config_dir(self) -> Path:
        """The folder given to ``postfix -c``."""
        return self.root / "etc"

    def write_config(self) -> None:
        """Create the folders, main.cf and master.cf (idempotent)."""
        nobody = pwd.getpwnam("nobody")
        # master(8) opens its lock as mail_owner and virtual(8) writes as nobody, both by
        # absolute path: every folder above the instance must be searchable by others.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        closed = [p for p in self.root.parents if not p.stat().st_mode & 0o001]
        if closed:
            raise ListenerError(f"postfix cannot reach {self.root}: chmod o+x {closed[0]}")
        for name in ("etc", "spool", "data", "mail"):
            (self.root / name).mkdir(exist_ok=True)
        shutil.chown(self.root / "data", user="postfix")
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.config_dir / "main.cf").write_text(
            _main_cf(self.root, self.port, self.processes), encoding="utf-8"
        )
        master = _SERVICES.format(listen=f"127.0.0.1:{self.port}")
        (self.config_dir / "master.cf").write_text(master, encoding="utf-8")

    def _postfix(self, verb: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), verb],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise ListenerError(f"postfix {verb} failed: {last}; see {self.log}")

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start the instance, wait for its 220 greeting."""
        self.write_config()
        self._postfix("start")
        self.started = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    if sock.recv(512).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.1)  # master forks smtpd on demand; poll, bounded by the deadline
        raise ListenerError(f"postfix did not greet on 127.0.0.1:{self.port}; see {self.log}")

    def stop(self) -> None:
        """Stop the instance if this object started it."""
        if self.started:
            self.started = False
            self._postfix("stop")

    @property
    def log(self) -> Path:
        """Postfix's log file for this instance."""
        return self.root / "maillog"

    def delivered(self) -> int:
        """Messages virtual(8) has written to the Maildir so far."""
        new = self.root / "mail" / "user" / "new"
        return sum(1 for _ in new.iterdir()) if new.is_dir() else 0

    def __enter__(self) -> PostfixSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str]) -> None:
    """``postfix_sink.py DIR PORT start|stop``: run the private instance by hand."""
    if len(argv) != 3 or argv[2] not in ("start", "stop"):
        sys.exit("usage: postfix_sink.py DIR PORT start|stop")
    sink = PostfixSink(Path(argv[0]).absolute(), int(argv[1]))
    if argv[2] == "start":
        sink.start()
        print(f"postfix listening on 127.0.0.1:{sink.port}; log in {sink.log}")
    else:
        sink.started = True
        sink.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
