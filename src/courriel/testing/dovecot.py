"""A private Dovecot IMAP server (Debian's dovecot-imapd) on loopback, for tests and benchmarks.

It never touches the system instance: ``dovecot -F -c CONF`` runs with a configuration of
its own written into one folder, which also holds its ``base_dir`` (sockets, pid), its
``state_dir``, its log, the passwd-file of the test users and their mail homes. It listens
on 127.0.0.1 only, on free high ports: IMAP (143's role) always, IMAPS (993's role) when a
certificate is given. Its mailboxes look like courriel's accounts: the INBOX namespace with
``/`` as separator and the folders Sent, Drafts, Junk, Trash and Archive created on login
with their RFC 6154 SPECIAL-USE attributes, all subscribed with INBOX (the same list as
:data:`courriel.mailstore.types.SPECIAL_FOLDERS`).

Invariants:
    * A started process is always ended by :meth:`DovecotImap.stop` (SIGTERM, then SIGKILL
      after a timeout); both context managers (sync and async) call it on any exit.
    * The folder is removed on stop when this object made it (a given ``root`` is kept).
    * Dovecot refuses mail processes running as root, so under root the test users' mail
      belongs to ``nobody``; otherwise to the current user (who then also runs the login
      and internal processes).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from courriel.errors import InvalidInput, ListenerError
from courriel.mailstore.types import SPECIAL_FOLDERS

__all__ = ["DOVECOT", "DovecotImap", "dovecot_available", "free_port"]

DOVECOT = "/usr/sbin/dovecot"
HOST = "127.0.0.1"
_DH_PARAMS = Path("/usr/share/dovecot/dh.pem")
_SUBDIRS = ("cur", "new", "tmp")


def dovecot_available() -> str:
    """Why a private Dovecot cannot run here, or ``""`` when it can."""
    if not Path(DOVECOT).exists():
        return f"dovecot is not installed ({DOVECOT} missing; Debian: dovecot-imapd)"
    if not Path("/usr/lib/dovecot/imap").exists():
        return "dovecot-imapd is not installed (/usr/lib/dovecot/imap missing)"
    return ""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that was free a moment ago (Dovecot needs its ports given)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _mail_owner() -> pwd.struct_passwd:
    # Dovecot rejects uid 0 for mail processes ("userdb returned 0 as uid").
    if os.geteuid() == 0:
        return pwd.getpwnam("nobody")
    return pwd.getpwuid(os.geteuid())


class DovecotImap:
    """One private Dovecot serving IMAP (and IMAPS) on 127.0.0.1 for the given users.

    Args:
        users: login name (e.g. ``alice@shop.test``) -> password, stored as ``{PLAIN}``.
        tls_files: (certificate chain PEM, private key PEM): ``ssl = yes`` and an IMAPS
            listener; None: ``ssl = no`` and plaintext LOGIN allowed on the IMAP port.
        mail_format: Dovecot's mail storage, ``sdbox`` or ``maildir``.
        extra_config: more ``dovecot.conf`` text appended at the end (a benchmark raises
            process limits there).
        root: the instance's folder; a fresh temporary one (removed on stop) when None.
        start_timeout: seconds allowed for Dovecot to greet on its IMAP port.
        stop_timeout: seconds allowed after SIGTERM before SIGKILL.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        tls_files: tuple[Path, Path] | None = None,
        mail_format: Literal["sdbox", "maildir"] = "sdbox",
        extra_config: str = "",
        root: Path | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        for name, password in users.items():
            # passwd-file(5) fields are colon-separated, one user a line.
            if not name or any(c in name + password for c in ":\r\n") or " " in name:
                raise InvalidInput(f"user {name!r}: no ':', space or line break allowed")
        self.users = dict(users)
        self.tls_files = tls_files
        self.mail_format = mail_format
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.host = HOST
        self.imap_port = 0
        self.imaps_port = 0  # stays 0 without tls_files
        self._given_root = root
        self.root = root or Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._delivered = 0  # messages written by deliver_maildir (unique file names)

    @property
    def pid(self) -> int:
        """The master process id (its children share its session), or 0 when stopped."""
        return self._process.pid if self._process is not None else 0

    @property
    def config_path(self) -> Path:
        """The ``dovecot.conf`` given to ``dovecot -c``."""
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's log for this instance (every process writes there)."""
        return self.root / "dovecot.log"

    def home(self, user: str) -> Path:
        """The mail home of ``user`` (``<root>/home/<domain>/<local part>``)."""
        local, _, domain = user.rpartition("@")
        return self.root / "home" / (domain if local else "") / (local or user)

    def deliver_maildir(
        self, user: str, messages: Iterable[bytes], *, internal_date: float | None = None
    ) -> int:
        """Write messages straight into ``user``'s INBOX (``mail_format="maildir"`` only).

        Much faster than APPEND for seeding thousands of messages: Dovecot indexes the
        files in ``new/`` when the folder is next opened, as new (\\Recent, unseen) mail.

        Args:
            user: a login name given in ``users``.
            messages: the messages, each in wire form.
            internal_date: their INTERNALDATE (epoch seconds; the files' mtime), now if None.

        Returns:
            The number of messages written.

        Raises:
            InvalidInput: the instance does not store mail as Maildir, or the user is unknown.
        """
        if self.mail_format != "maildir" or user not in self.users:
            raise InvalidInput(
                f"deliver_maildir needs mail_format maildir and a known user: {user}"
            )
        owner = _mail_owner()
        stamp = time.time() if internal_date is None else internal_date
        inbox = self.home(user) / "mail"
        for folder in (inbox.parent.parent, inbox.parent, inbox, *(inbox / s for s in _SUBDIRS)):
            folder.mkdir(exist_ok=True)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        count = 0
        for data in messages:
            count += 1
            # Maildir names only need to be unique: time, this instance's counter, our pid.
            self._delivered += 1
            name = f"{int(stamp)}.M{self._delivered}P{os.getpid()}.courriel-test"
            path = inbox / "new" / name
            path.write_bytes(data)
            os.chown(path, owner.pw_uid, owner.pw_gid)
            os.utime(path, (stamp, stamp))
        return count

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])

    def config_text(self) -> str:
        """The whole ``dovecot.conf`` (ports must be chosen already)."""
        owner = _mail_owner()
        parts = [
            f"instance_name = courriel-test-{self.imap_port}",
            f"base_dir = {self.root / 'run'}",
            f"state_dir = {self.root / 'state'}",
            f"log_path = {self.log_path}",
            "protocols = imap",
            f"listen = {HOST}",
            "shutdown_clients = yes",
            "auth_mechanisms = plain login",
            f"first_valid_uid = {owner.pw_uid}",
            f"first_valid_gid = {owner.pw_gid}",
            # Tests and benchmarks open many sessions from one address as one user.
            "mail_max_userip_connections = 1000",
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {self.root / 'passwd'}\n}}",
            "userdb {\n  driver = static\n"
            f"  args = uid={owner.pw_uid} gid={owner.pw_gid} home={self.root}/home/%d/%n\n}}",
            f"mail_location = {self.mail_format}:~/mail",
            self._namespace(),
            *self._tls_settings(),
            self._listeners(),
        ]
        if os.geteuid() != 0:
            # Unprivileged: every process runs as the current user.
            parts += [f"default_login_user = {owner.pw_name}"]
            parts += [f"default_internal_user = {owner.pw_name}"]
        return "\n".join([*parts, self.extra_config, ""])

    def _namespace(self) -> str:
        # RFC 6154 §2: the special-use folders, created and subscribed like courriel's.
        boxes = "".join(
            f"  mailbox {name} {{\n    auto = subscribe\n"
            + (f"    special_use = {role}\n" if role else "")
            + "  }\n"
            for name, role in SPECIAL_FOLDERS
        )
        return f"namespace inbox {{\n  inbox = yes\n  separator = /\n  prefix =\n{boxes}}}"

    def _tls_settings(self) -> list[str]:
        if self.tls_files is None:
            return ["ssl = no", "disable_plaintext_auth = no"]
        chain, key = self.tls_files
        settings = ["ssl = yes", f"ssl_cert = <{chain}", f"ssl_key = <{key}"]
        if _DH_PARAMS.exists():
            settings.append(f"ssl_dh = <{_DH_PARAMS}")
        # Plaintext LOGIN stays allowed on loopback so that both ports can be compared.
        settings.append("disable_plaintext_auth = no")
        return settings

    def _listeners(self) -> str:
        imaps = (
            f"  inet_listener imaps {{\n    address = {HOST}\n    port = {self.imaps_port}\n"
            "    ssl = yes\n  }\n"
            if self.tls_files is not None
            else "  inet_listener imaps {\n    port = 0\n  }\n"
        )
        return (
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = {HOST}\n    port = {self.imap_port}\n  }}\n"
            f"{imaps}}}"
        )

    def write_config(self) -> None:
        """Create the folder, the passwd-file and ``dovecot.conf``; choose the ports."""
        if self._given_root is None:
            self.root = Path(tempfile.mkdtemp(prefix="courriel-dovecot-"))
        self.root.mkdir(parents=True, exist_ok=True)
        # Login and mail processes run as other users and reach these files by path.
        self.root.chmod(0o755)
        owner = _mail_owner()
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, owner.pw_uid, owner.pw_gid)
        passwd = "".join(f"{name}:{{PLAIN}}{pw}::::::\n" for name, pw in self.users.items())
        (self.root / "passwd").write_text(passwd, encoding="utf-8")
        self.imap_port = self.imap_port or free_port()
        if self.tls_files is not None:
            self.imaps_port = self.imaps_port or free_port()
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def start(self) -> Self:
        """Write the configuration, start ``dovecot -F`` and wait for its IMAP greeting.

        Raises:
            ListenerError: Dovecot is missing, exited, or did not greet in time.
        """
        reason = dovecot_available()
        if reason:
            raise ListenerError(reason)
        self.write_config()
        self._process = subprocess.Popen(  # noqa: S603 (a fixed program, our own arguments)
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ListenerError(f"dovecot exited: {self.log_tail()}")
            try:
                if self._greets(deadline):
                    return
            except OSError as exc:
                last = str(exc)
            # Not listening yet: the master binds its listeners right after it starts.
            time.sleep(0.05)
        raise ListenerError(f"dovecot does not greet on {HOST}:{self.imap_port}: {last}")

    def _greets(self, deadline: float) -> bool:
        """Whether Dovecot answers with its ready greeting (not only "waiting for auth")."""
        timeout = max(0.1, deadline - time.monotonic())
        with socket.create_connection((HOST, self.imap_port), timeout=timeout) as sock:
            reader = sock.makefile("rb")
            while True:
                line = reader.readline()
                if not line:
                    return False
                # "* OK Waiting for authentication process to respond.." comes first
                # while the auth process starts; the real greeting carries CAPABILITY.
                if line.startswith(b"* OK [CAPABILITY"):
                    sock.sendall(b"z LOGOUT\r\n")
                    return True

    def stop(self) -> None:
        """End Dovecot (SIGTERM, then SIGKILL), wait for it and remove its folder if ours."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                # The master's children share its session: end them all.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._given_root is None and self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
