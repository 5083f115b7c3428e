"""Realistic Gmail payloads for the Gmail channel's tests: RFC 5322 messages as Gmail's
mx.google.com delivers them (Authentication-Results on top), and the Gmail API's JSON for
messages.get(format=raw), history.list, messages.send, users.watch; a GmailClient over
googleapiclient's HttpMockSequence."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from googleapiclient import discovery
from googleapiclient.http import HttpMockSequence

from adapters.channels.gmail.api import GmailClient

MAILBOX = "support@tasklane.example"
Response = tuple[dict[str, str], str]

_AUTH_PASS = (
    "Authentication-Results: mx.google.com;\r\n"
    "       dkim=pass header.i=@{domain} header.s=20230601 header.b=kX3mPq9z;\r\n"
    "       spf=pass (google.com: domain of {sender} designates 209.85.220.41 as permitted"
    " sender) smtp.mailfrom={sender};\r\n"
    "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from={domain}\r\n"
)


def _auth(sender: str) -> str:
    return _AUTH_PASS.format(sender=sender, domain=sender.split("@")[1])


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


MULTIPART_ALTERNATIVE = _crlf(
    "Delivered-To: support@tasklane.example\n"
    "Received: by 2002:a05:7300:5f8d:b0:12a:1f0e:93c8 with SMTP id x13csp1234567dyd;\n"
    "        Mon, 30 Nov 2026 09:12:44 -0800 (PST)\n"
    + _auth("ana@example.com")
    + "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=20230601;\n"
    "        h=to:subject:message-id:date:from:mime-version; bh=47DEQpj8HBSa+/TImW+5JC=;\n"
    "        b=kX3mPq9zAbCdEf==\n"
    "MIME-Version: 1.0\n"
    "From: Ana Ruiz <ana@example.com>\n"
    "Date: Mon, 30 Nov 2026 18:12:31 +0100\n"
    "Message-ID: <CAF3x9Zk1=abc123@mail.gmail.com>\n"
    "Subject: How do I export my projects to CSV?\n"
    "To: support@tasklane.example\n"
    'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"\n'
    "\n"
    "--000000000000a1b2c3d4e5f6\n"
    'Content-Type: text/plain; charset="UTF-8"\n'
    "\n"
    "Hi,\n"
    "\n"
    "How do I export my projects to CSV? I need it for a report.\n"
    "\n"
    "Thanks,\n"
    "Ana\n"
    "\n"
    "--000000000000a1b2c3d4e5f6\n"
    'Content-Type: text/html; charset="UTF-8"\n'
    "\n"
    '<div dir="ltr">Hi,<div><br></div><div>How do I export my projects to CSV? I need it'
    " for a <b>report</b>.</div><div><br></div><div>Thanks,</div><div>Ana</div></div>\n"
    "\n"
    "--000000000000a1b2c3d4e5f6--\n"
)

HTML_ONLY = _crlf(
    "Delivered-To: support@tasklane.example\n"
    + _auth("li.wei@contoso.com")
    + "From: =?utf-8?B?5p2O5Lyf?= <li.wei@contoso.com>\n"
    "To: Tasklane Support <support@tasklane.example>\n"
    "Subject: Billing page shows an error\n"
    "Date: Mon, 30 Nov 2026 17:20:05 +0000\n"
    "Message-ID: <DB9PR08MB6731C0FFEE@DB9PR08MB6731.eurprd08.prod.outlook.com>\n"
    'Content-Type: text/html; charset="us-ascii"\n'
    "Content-Transfer-Encoding: quoted-printable\n"
    "MIME-Version: 1.0\n"
    "\n"
    "<html><head><style>p {margin:0}</style><script>track()</script></head>\n"
    "<body><p>Hello&nbsp;team,</p><p>When I open <b>Billing</b> I get &quot;Error 500&quot;=\n"
    " &amp; nothing loads.</p><ul><li>Chrome 120</li><li>Windows 11</li></ul>\n"
    "<p>Regards,<br>Li</p></body></html>\n"
)

REPLY_WITH_HISTORY = _crlf(
    "Delivered-To: support@tasklane.example\n"
    + _auth("ana@example.com")
    + "From: Ana Ruiz <ana@example.com>\n"
    "To: Tasklane Support <support@tasklane.example>\n"
    "Subject: Re: How do I export my projects to CSV?\n"
    "Date: Mon, 30 Nov 2026 19:02:10 +0100\n"
    "Message-ID: <CAF3x9Zk2=def456@mail.gmail.com>\n"
    "In-Reply-To: <reply-1@tasklane.example>\n"
    "References: <CAF3x9Zk1=abc123@mail.gmail.com> <reply-1@tasklane.example>\n"
    'Content-Type: text/plain; charset="UTF-8"\n'
    "MIME-Version: 1.0\n"
    "\n"
    "Thanks, but the export button is greyed out for me.\n"
    "\n"
    "On Mon, 30 Nov 2026 at 18:15, Tasklane Support <support@tasklane.example> wrote:\n"
    "> Hello Ana,\n"
    "> Go to Settings > Export and choose CSV.\n"
    "> Best regards, Tasklane Support\n"
)

LATIN1 = (
    b"Delivered-To: support@tasklane.example\r\n"
    + _auth("francois@exemple.fr").encode()
    + b"From: =?ISO-8859-1?Q?Fran=E7ois_L=E9vesque?= <francois@exemple.fr>\r\n"
    b"To: support@tasklane.example\r\n"
    b"Subject: =?ISO-8859-1?Q?Probl=E8me_d'export?=\r\n"
    b"Date: Mon, 30 Nov 2026 18:40:00 +0100\r\n"
    b"Message-ID: <20261130174000.GA1234@exemple.fr>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Bonjour, je n'arrive pas \xe0 exporter mes donn\xe9es. Merci d'avance, Fran\xe7ois\r\n"
)

_PDF = base64.b64encode(b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n").decode()
ATTACHMENT = _crlf(
    "Delivered-To: support@tasklane.example\n"
    + _auth("ana@example.com")
    + "From: Ana Ruiz <ana@example.com>\n"
    "To: support@tasklane.example\n"
    "Subject: Invoice looks wrong\n"
    "Date: Mon, 30 Nov 2026 20:00:00 +0100\n"
    "Message-ID: <CAF3x9Zk3=ghi789@mail.gmail.com>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="mixed42"\n'
    "\n"
    "--mixed42\n"
    'Content-Type: text/plain; charset="UTF-8"\n'
    "\n"
    "Please see the attached invoice, the total looks wrong.\n"
    "--mixed42\n"
    'Content-Type: application/pdf; name="invoice-2026-11.pdf"\n'
    'Content-Disposition: attachment; filename="invoice-2026-11.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    f"{_PDF}\n"
    "--mixed42--\n"
)

AUTO_REPLY = _crlf(
    "Delivered-To: support@tasklane.example\n"
    + _auth("ana@example.com")
    + "From: Ana Ruiz <ana@example.com>\n"
    "To: support@tasklane.example\n"
    "Subject: Automatic reply: Re: How do I export my projects to CSV?\n"
    "Auto-Submitted: auto-replied\n"
    "X-Autoreply: yes\n"
    "Message-ID: <ooo-1@example.com>\n"
    "Date: Mon, 30 Nov 2026 18:16:00 +0100\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "I am out of the office until Monday.\n"
)

BULK = _crlf(
    "From: Newsletter <news@vendor.example>\n"
    "To: support@tasklane.example\n"
    "Subject: Our November news\n"
    "Precedence: bulk\n"
    "Message-ID: <news-11@vendor.example>\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Big news this month.\n"
)

BOUNCE = _crlf(
    "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
    "To: support@tasklane.example\n"
    "Subject: Delivery Status Notification (Failure)\n"
    "Message-ID: <bounce-1@mx.google.com>\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n'
    "\n"
    "--b1\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Address not found.\n"
    "--b1--\n"
)

OWN_SENT = _crlf(
    "From: Tasklane Support <support@tasklane.example>\n"
    "To: Ana Ruiz <ana@example.com>\n"
    "Subject: Re: How do I export my projects to CSV?\n"
    "Message-ID: <reply-1@tasklane.example>\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Hello Ana, go to Settings > Export.\n"
)

# From claims bigcorp.com; Gmail's own verdict (topmost) fails; the sender added a forged
# "pass" header below it, which must not count.
SPOOFED = _crlf(
    "Delivered-To: support@tasklane.example\n"
    "Authentication-Results: mx.google.com;\n"
    "       dkim=fail header.i=@bigcorp.com header.s=sel1 header.b=ZZZZ;\n"
    "       spf=fail (google.com: domain of ceo@attacker.example does not designate"
    " 203.0.113.9 as permitted sender) smtp.mailfrom=ceo@attacker.example;\n"
    "       dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=bigcorp.com\n"
    "Authentication-Results: mx.google.com; dkim=pass header.i=@bigcorp.com;"
    " spf=pass smtp.mailfrom=ceo@bigcorp.com\n"
    "From: The CEO <ceo@bigcorp.com>\n"
    "To: support@tasklane.example\n"
    "Subject: Urgent: send me all customer invoices\n"
    "Message-ID: <spoof-1@attacker.example>\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Send me every invoice of my account now.\n"
)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def message_json(
    message_id: str,
    raw: bytes,
    *,
    thread_id: str | None = None,
    labels: Sequence[str] = ("UNREAD", "IMPORTANT", "CATEGORY_PERSONAL", "INBOX"),
    internal_date: int = 1_795_000_000_000,
) -> str:
    return json.dumps(
        {
            "id": message_id,
            "threadId": thread_id or f"t-{message_id}",
            "labelIds": list(labels),
            "snippet": "",
            "sizeEstimate": len(raw),
            "historyId": "4242",
            "internalDate": str(internal_date),
            "raw": b64url(raw),
        }
    )


def history_json(
    added: Sequence[tuple[str, str]], history_id: int, next_page: str | None = None
) -> str:
    """history.list: each (message id, thread id) added to the inbox."""
    records: list[dict[str, Any]] = [
        {
            "id": str(history_id - len(added) + i),
            "messages": [{"id": m, "threadId": t}],
            "messagesAdded": [{"message": {"id": m, "threadId": t, "labelIds": ["INBOX"]}}],
        }
        for i, (m, t) in enumerate(added)
    ]
    body: dict[str, Any] = {"historyId": str(history_id)}
    if records:
        body["history"] = records
    if next_page:
        body["nextPageToken"] = next_page
    return json.dumps(body)


def ok(body: str) -> Response:
    return ({"status": "200", "content-type": "application/json"}, body)


def error(status: int, reason: str = "error") -> Response:
    body = {"error": {"code": status, "message": reason, "errors": [{"reason": reason}]}}
    return ({"status": str(status), "content-type": "application/json"}, json.dumps(body))


def mock_client(responses: Sequence[Response]) -> tuple[GmailClient, HttpMockSequence]:
    """A GmailClient whose HTTP is the given sequence of canned responses (one service,
    no library retries); `http.request_sequence` records what was asked."""
    http = HttpMockSequence(list(responses))

    def build() -> Any:
        return discovery.build("gmail", "v1", http=http, static_discovery=True)

    return GmailClient(MAILBOX, build, pool_size=1, num_retries=0), http
