"""EmailChannel: one outbox row, one email over SMTP.

Which SMTP answers are worth another try, and which are not, is this
channel's knowledge (the outbox only asks `outcome`):
- no connection, a dropped one, a timeout, a 4xx answer: try again later;
- the server refuses us (authentication failed, sender or every recipient
  refused, STARTTLS required but not offered): the destination refuses, the
  outbox holds its rows and probes again every few minutes;
- a 5xx answer to the message itself (too big, rejected content): never.
The password is never logged: SMTP errors carry the server's answer, not it.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Callable

from ops.alerting.channel import BaseChannel, OutgoingMessage, Sent
from ops.core.errors import DeliveryError, Outcome
from ops.core.redact import redact, register_secret
from ops.core.settings import Settings, SettingsError


class EmailChannel(BaseChannel):
    def __init__(self, host: str, port: int, sender: str, recipients: list[str], *, user: str | None = None,
                 password: str | None = None, tls: str = "auto", timeout: float = 20.0,
                 clock: Callable[[], float] = time.monotonic, destination: str = "email"):
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.user, self._password, self.tls, self.timeout = user, password, tls, timeout
        self.clock, self.destination = clock, destination
        self.deadline: float | None = None
        if password:
            register_secret(password)

    def __repr__(self) -> str:  # never the password
        return f"EmailChannel({self.host}:{self.port} -> {', '.join(self.recipients)})"

    @property
    def key(self) -> str:
        return f"email:{','.join(self.recipients)}"

    def set_deadline(self, seconds_left: float | None) -> None:
        self.deadline = None if seconds_left is None else self.clock() + max(0.0, seconds_left)

    def send(self, message: OutgoingMessage) -> Sent | None:
        if message.kind not in ("text", "reply", "edit"):
            return None   # files and button answers are the chat's; nothing to mail
        timeout = self.timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - self.clock())
            if timeout <= 1.0:
                raise DeliveryError("no time left in this drain for an SMTP session", attempted=False)
        subject, _, text = message.body.partition("\n\n")
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, ", ".join(self.recipients), subject.strip()
        mail["Date"], mail["Message-ID"] = formatdate(localtime=False), make_msgid(domain="opsbench")
        mail.set_content(text or subject)
        try:
            self._deliver(mail, timeout)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as err:
            failure = DeliveryError(f"SMTP {self.host}: login refused ({err.smtp_code})", outcome=Outcome.refused)
        except smtplib.SMTPRecipientsRefused as err:
            codes = sorted({code for code, _ in err.recipients.values()})
            failure = DeliveryError(f"SMTP {self.host}: every recipient refused ({codes})",
                                    outcome=Outcome.retry_later if all(400 <= c < 500 for c in codes)
                                    else Outcome.refused)
        except smtplib.SMTPSenderRefused as err:
            failure = DeliveryError(f"SMTP {self.host}: sender {self.sender} refused ({err.smtp_code})",
                                    outcome=Outcome.retry_later if 400 <= err.smtp_code < 500 else Outcome.refused)
        except smtplib.SMTPNotSupportedError as err:
            failure = DeliveryError(f"SMTP {self.host}: {err}", outcome=Outcome.refused)
        except smtplib.SMTPResponseException as err:
            text = err.smtp_error.decode("utf-8", "replace") if isinstance(err.smtp_error, bytes) else err.smtp_error
            failure = DeliveryError(f"SMTP {self.host}: {err.smtp_code} {text}",
                                    outcome=Outcome.retry_later if 400 <= err.smtp_code < 500 else Outcome.never)
        except (smtplib.SMTPException, OSError, socket.timeout) as err:
            failure = DeliveryError(f"SMTP {self.host}:{self.port} not reachable: {type(err).__name__}: {err}",
                                    outcome=Outcome.retry_later)
        else:
            return None
        # raised outside the except block: no chained error that might hold more than we say
        raise DeliveryError(redact(str(failure)), outcome=failure.outcome)

    def _deliver(self, mail: EmailMessage, timeout: float) -> None:
        if self.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            secure = self.tls == "ssl"
            offered = smtp.has_extn("starttls")
            if self.tls == "starttls" or (self.tls == "auto" and offered):
                if not offered:
                    raise smtplib.SMTPNotSupportedError("STARTTLS required (OPSBENCH_SMTP_TLS) but not offered")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                secure = True
            if self.user:
                if not secure:  # never send a password in clear text
                    raise smtplib.SMTPNotSupportedError("SMTP login needs STARTTLS or OPSBENCH_SMTP_TLS=ssl")
                smtp.login(self.user, self._password or "")
            smtp.send_message(mail)


def connect(settings: Settings, engine=None, *, clock: Callable[[], float] | None = None, sleep=None,
            destination: str = "email") -> EmailChannel:
    if not settings.email_to:
        raise SettingsError("OPSBENCH_EMAIL_TO: not set (comma-separated addresses for the email channel)")
    return EmailChannel(settings.smtp_host, settings.smtp_port, settings.email_sender, settings.email_recipients,
                        user=settings.smtp_user,
                        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                        tls=settings.smtp_tls, clock=clock or time.monotonic, destination=destination)

