"""End-to-end check of a provisioned mail server with a real SMTP client.

Repeats the seed tutorial's tests (relay refused without AUTH, AUTH over TLS,
relay allowed after AUTH, STARTTLS handshake) plus the group restriction
(outsider gets 535) and, optionally, local delivery to an alias.

Rules this package keeps:
- No printing and no rendering: it returns data; report.py renders it.
- No password ever reaches a result: details are built from server replies
  and scrubbed of every password (and its AUTH PLAIN base64 form) anyway.
- One connection per port (the server sleeps 5 s per connection because of
  ``smtpd_client_restrictions = sleep 5``); ports run concurrently.
- A refused or timed-out connection yields failed checks, never an exception.
- No mail ever leaves the server: the relay test after AUTH stops at RCPT TO
  and is followed by RSET.

The package follows these seams: ``model`` (target, results, credentials
kept out of them), ``expect`` (what each reply must be: pure), ``smtp`` (the
smtplib client), ``session`` (one port's checks) and ``client`` (verify()).
"""

from provisioner.verify.client import verify
from provisioner.verify.model import CheckResult, Credentials, VerifyReport, VerifyTarget

__all__ = ["CheckResult", "Credentials", "VerifyReport", "VerifyTarget", "verify"]
