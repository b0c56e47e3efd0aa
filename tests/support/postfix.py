"""A real Postfix (Debian's package) for the mail tests, started on free loopback ports with its
own configuration, queue and log under a temporary directory: the scale-out form of
docs/mail.md ("Scale-out: Postfix and Dovecot"), nothing shared with a system Postfix.

Two smtpd listeners, as a province runs them:
- `mx_port`: the province's MX. Mail for `domains` is relayed (relay_domains + transport_maps)
  to the mail service's inbound port; every recipient is verified there first
  (reject_unverified_recipient), so an unknown address is refused at RCPT with our own 550
  quoted, and Postfix never accepts mail it would have to bounce (no backscatter). Relaying
  anywhere else is refused (reject_unauth_destination), loopback clients included.
- `relay_port`: the smarthost for the mail service's outgoing queue: clients in mynetworks
  (127.0.0.0/8) may relay; all but `domains` goes on to `relayhost` (the sink here, the
  province's upstream in production).

Root is needed (Postfix's master binds and drops privileges to mail_owner, as in
production); `unavailable()` says why Postfix cannot run here, for the tests' skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

POSTFIX = "/usr/sbin/postfix"
MAIL_OWNER, SETGID_GROUP = "postfix", "postdrop"
HOSTNAME = "mx.hatinh.gov.vn"

MAIN_CF = """\
# Written by tests/support/postfix.py; docs/mail.md explains each setting.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = {mail_owner}
setgid_group = {setgid_group}
myhostname = {hostname}
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# No local delivery at all: every domain of the province is relayed to the mail service.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery here
alias_maps =
alias_database =
relay_domains = {domains}
transport_maps = texthash:{root}/etc/transport
relayhost = {relayhost}
# Recipients of relay_domains are checked at the mail service before Postfix says 250.
unverified_recipient_reject_code = 550
address_verify_poll_delay = 1s
# Below [mail] max_message_bytes (25 MiB), with room for the Received header we add.
message_size_limit = 26200000
smtp_tls_security_level = may
smtputf8_enable = yes
# Hermetic: no DNS (next hops are IP literals), log to a file the tests read.
smtp_dns_support_level = disabled
smtp_host_lookup = native
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
"""

# Debian's master.cf.proto, trimmed to what a relay uses, chroot off (column 5 = n): a chroot
# would need copies of /etc files inside the temporary queue directory.
MASTER_CF = """\
127.0.0.1:{mx_port} inet n - n - - smtpd
  -o syslog_name=postfix/mx
  -o smtpd_relay_restrictions=reject_unauth_destination
  -o smtpd_recipient_restrictions=reject_unverified_recipient
127.0.0.1:{relay_port} inet n - n - - smtpd
  -o syslog_name=postfix/relay
  -o smtpd_relay_restrictions=permit_mynetworks,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    root: Path
    mx_port: int
    relay_port: int

    @property
    def config_directory(self) -> Path:
        return self.root / "etc"

    def log(self) -> str:
        try:
            return (self.root / "maillog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = 15.0) -> str:
        """The log once `text` is in it (Postfix delivers from its queue, asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in Postfix's log:\n{self.log()}")

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_directory), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )


def unavailable() -> str | None:
    """Why Postfix cannot be started here, or None."""
    if not Path(POSTFIX).exists():
        return "Postfix not installed (make setup installs it as root: apt-get install postfix)"
    if os.geteuid() != 0:
        return "Postfix's master must start as root (it drops to mail_owner); not root here"
    return None


@contextmanager
def running_postfix(
    *, domains: Sequence[str], inbound_port: int, relayhost_port: int
) -> Iterator[Postfix]:
    """Postfix relaying `domains` to 127.0.0.1:inbound_port (the mail service) and everything
    else its relay port accepts to [127.0.0.1]:relayhost_port; stopped on exit."""
    # Not under pytest's tmp_path: its parents are 0700, and the postfix user's daemons need
    # to reach the queue and the log.
    root = Path(tempfile.mkdtemp(prefix="lgsp-postfix-"))
    root.chmod(0o755)
    pf = Postfix(root, free_port(), free_port())
    etc = pf.config_directory
    etc.mkdir()
    (root / "queue").mkdir()
    nexthop = f"smtp:[127.0.0.1]:{inbound_port}"
    (etc / "transport").write_text("".join(f"{d} {nexthop}\n" for d in domains))
    (etc / "main.cf").write_text(
        MAIN_CF.format(
            root=root,
            mail_owner=MAIL_OWNER,
            setgid_group=SETGID_GROUP,
            hostname=HOSTNAME,
            domains=", ".join(domains),
            relayhost=f"[127.0.0.1]:{relayhost_port}",
        )
    )
    (etc / "master.cf").write_text(MASTER_CF.format(mx_port=pf.mx_port, relay_port=pf.relay_port))
    started = False
    try:
        # start creates the queue's subdirectories with their owners and modes (post-install).
        for args in (("start",),):
            done = pf.postfix(*args)
            if done.returncode != 0:
                raise RuntimeError(
                    f"postfix {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout}{done.stderr}\n{pf.log()}"
                )
        started = True
        yield pf
    finally:
        if started:
            pf.postfix("stop")
            _wait_stopped(pf)
        shutil.rmtree(root, ignore_errors=True)


def _wait_stopped(pf: Postfix) -> None:
    """`postfix stop` returns before master's children are gone; removing the queue under
    them would fill the log with errors."""
    pid_file = pf.root / "queue" / "pid" / "master.pid"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            return
        time.sleep(0.05)
