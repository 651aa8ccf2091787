"""A private Postfix (Debian's package) on one loopback address, for tests and benchmarks.

It never touches the system instance: configuration, queue, data, mail and log all live in
one folder of its own, given with ``postfix -c DIR``. Its smtpd listens on ``host:port``
only and accepts mail for one virtual mailbox domain, delivered by virtual(8) into one
Maildir per mailbox (``<root>/mail/<name>/new``). Postfix itself resolves nothing
(``disable_dns_lookups``, native host lookups, no peer name lookup).

:class:`PostfixMx` owns the folder layout, ``main.cf`` and ``master.cf``, and start and
stop. It only receives, and offers STARTTLS when a certificate is given (the TLS details
then appear in its ``Received`` header): the remote MX of the interop tests. A subclass
adds ``main.cf`` settings (:meth:`PostfixMx.settings`) and ``master.cf`` services
(:attr:`PostfixMx.extra_services`), as ``bench/postfix_sink.py`` (the benchmarks' sink on
127.0.0.1, which also relays) does.

Invariants:
    * Start and stop only with ``postfix -c DIR start|stop``; a started instance is always
      stopped by :meth:`PostfixMx.stop` (called by the context manager on any exit).
    * Starting needs root (master(8) runs as root and drops to ``mail_owner``), and every
      folder above ``root`` must be searchable by others (``postfix`` and ``nobody`` use it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from courriel.errors import ListenerError

__all__ = ["POSTFIX", "PostfixMx", "postfix_available"]

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
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
{extra}"""
_TLSMGR = "tlsmgr     unix  - - n 1000? 1 tlsmgr\n"


def postfix_available() -> str:
    """Why a private Postfix cannot run here, or ``""`` when it can."""
    if not Path(POSTFIX).exists():
        return f"postfix is not installed ({POSTFIX} missing)"
    if os.geteuid() != 0:
        return "starting postfix needs root"
    return ""


class PostfixMx:
    """One private Postfix instance in ``root``, receiving as an MX on ``host:port``.

    Args:
        root: the instance's folder (created; must be reachable by other users).
        host: the loopback address smtpd binds.
        port: the port smtpd binds.
        domain: the virtual mailbox domain it accepts mail for.
        mailboxes: local part -> Maildir folder name, e.g. ``{"buyer": "buyer"}``.
        tls_files: (certificate chain PEM, private key PEM) to offer STARTTLS, or None.
        hostname: its ``myhostname`` (``mydomain`` is the part after the first dot);
            ``mx.<domain>`` when empty.
    """

    extra_services: ClassVar[str] = ""  # master.cf lines a subclass needs besides smtpd's

    def __init__(
        self,
        root: Path,
        *,
        host: str,
        port: int,
        domain: str,
        mailboxes: Mapping[str, str],
        tls_files: tuple[Path, Path] | None = None,
        hostname: str = "",
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.domain = domain
        self.mailboxes = dict(mailboxes)
        self.tls_files = tls_files
        self.hostname = hostname or f"mx.{domain}"
        self.started = False

    @property
    def config_dir(self) -> Path:
        """The folder given to ``postfix -c``."""
        return self.root / "etc"

    @property
    def log(self) -> Path:
        """Postfix's log file for this instance."""
        return self.root / "maillog"

    def maildir(self, local: str) -> Path:
        """The ``new`` folder of the Maildir of mailbox ``local``."""
        return self.root / "mail" / self.mailboxes[local] / "new"

    def delivered(self, local: str) -> list[bytes]:
        """The messages virtual(8) has written to mailbox ``local``, oldest first."""
        folder = self.maildir(local)
        if not folder.is_dir():
            return []
        files = sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [path.read_bytes() for path in files]

    def settings(self) -> dict[str, object]:
        """The ``main.cf`` settings; a subclass extends or overrides them."""
        nobody = pwd.getpwnam("nobody")
        boxes = ", ".join(f"{local}@{self.domain}={box}/" for local, box in self.mailboxes.items())
        settings: dict[str, object] = {
            "compatibility_level": "3.6",
            "config_directory": self.config_dir,
            "queue_directory": self.root / "spool",
            "data_directory": self.root / "data",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2],
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            # Only Postfix itself is trusted: the sender is a remote client, as on the Internet.
            "mynetworks": f"{self.host}/32",
            "smtpd_banner": "$myhostname ESMTP",
            "master_service_disable": "",
            # No DNS anywhere: nothing is looked up, nothing leaves this machine.
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
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": self.root / "mail",
            "virtual_mailbox_maps": f"inline:{{ {boxes} }}",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.root,
        }
        if self.host != "127.0.0.1":
            # Postfix accepts only addresses of an interface in inet_interfaces, and lo
            # carries just 127.0.0.1; master.cf binds smtpd to host:port itself, and
            # proxy_interfaces makes the address Postfix's own.
            settings["proxy_interfaces"] = self.host
        if self.tls_files is not None:
            settings.update(
                smtpd_tls_security_level="may",
                smtpd_tls_chain_files=f"{self.tls_files[1]}, {self.tls_files[0]}",
                smtpd_tls_received_header="yes",
                smtpd_tls_loglevel="1",
            )
        return settings

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
        main = "".join(f"{key} = {value}\n" for key, value in self.settings().items())
        (self.config_dir / "main.cf").write_text(main, encoding="utf-8")
        extra = self.extra_services + (_TLSMGR if self.tls_files is not None else "")
        master = _SERVICES.format(listen=f"{self.host}:{self.port}", extra=extra)
        (self.config_dir / "master.cf").write_text(master, encoding="utf-8")

    def _postfix(self, verb: str) -> None:
        result = subprocess.run(  # noqa: S603 (a fixed program and our own arguments)
            [POSTFIX, "-c", str(self.config_dir), verb],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise ListenerError(f"postfix {verb} failed: {last}; see {self.log}")

    def start(self) -> None:
        """Write the configuration, start the instance and check its 220 greeting.

        ``postfix start`` returns once master(8) has bound the listener (``master -w``),
        so one connection tells whether smtpd answers.

        Raises:
            ListenerError: postfix refused to start or does not greet.
        """
        self.write_config()
        self._postfix("start")
        self.started = True
        try:
            with socket.create_connection((self.host, self.port), timeout=10) as sock:
                greeting = sock.recv(512)
                sock.sendall(b"QUIT\r\n")
        except OSError as exc:
            greeting = str(exc).encode()
        if not greeting.startswith(b"220"):
            self.stop()
            raise ListenerError(f"postfix does not greet on {self.host}:{self.port}: {greeting!r}")

    def stop(self) -> None:
        """Stop the instance if this object started it."""
        if self.started:
            self.started = False
            self._postfix("stop")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
