"""Real-world bounce texts in the layouts on-call engineers paste, with what triage must say.

The replies are the verbatim strings Microsoft documents (DOMAIN.md section 4 and the research
it cites); the layouts around them are how they reach people: an Exchange Online NDR with its
headers and DSN part, the Exchange queue viewer and Get-Queue, Postfix log lines, SMTP protocol
logs, message-trace rows, and NDRs written in Japanese (Exchange Online writes the NDR in the
recipient's language but keeps codes and tokens in ASCII).

Each case lists the statuses triage must find, in order: (code as pasted, entry key, class).
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.model import Scenario

PERMANENT = "permanent"
TEMPORARY = "temporary"

TENANT_ATTRIBUTION = "550 5.7.64 TenantAttribution; Relay Access Denied SMTP"
ATTR36 = (
    "550 5.7.64 Relay Access Denied ATTR36. For more details please refer to: "
    "https://support.microsoft.com/kb/3169958"
)
ATTR36_2016 = "451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36"
ATTR35 = "451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35."
ATTR34 = "554 5.4.14 Hop count exceeded - possible mail loop ATTR34"
DIRECT_SEND = (
    "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from "
    "unauthorized sources"
)
THRESHOLD = "5.7.705 Access denied, tenant has exceeded threshold"
IP_BLOCK = "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP"
UNREGISTERED = (
    "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains"
)
UNTRUSTED_ROOT = "450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]"
TES_THROTTLE = (
    "450 4.7.230 Connecting Exchange server version is out-of-date; connection to Exchange "
    "Online throttled for 5 mins/hr."
)
TES_BLOCK = (
    "550 5.7.230 Connecting Exchange server version is out-of-date; connection to Exchange "
    "Online blocked for 10 mins/hr."
)
SEND_CONNECTOR = (
    "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not "
    "be found."
)
LEGACY_TLS = (
    "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
    "support TLS 1.2."
)
PARTNER_51 = (
    "550 5.7.51 TenantInboundAttribution; Rejecting message because the connector's "
    "restrictions were not met"
)


@dataclass(frozen=True, slots=True)
class Bounce:
    name: str
    layout: str
    text: str
    expected: tuple[tuple[str, str, str | None], ...]  # (code as pasted, key, class)
    scenario: Scenario | None = None  # a scenario the first status must name


def ndr(recipient: str, reply: str, *, status: str) -> str:
    """An Exchange Online NDR as Outlook shows it, with the DSN part and original headers."""
    return f"""From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>
To: john@contoso.com
Subject: Undeliverable: Quarterly report
Date: Fri, 20 Nov 2026 09:12:03 +0000
Content-Type: multipart/report; report-type=delivery-status;
X-MS-Exchange-Message-Is-Ndr:
X-MS-Exchange-Organization-SCL: -1

Your message to {recipient} couldn't be delivered.
Delivery has failed to these recipients or groups:

{recipient}
A problem occurred while delivering this message to this email address.

Diagnostic information for administrators:

Generating server: AM0PR01MB1234.eurprd01.prod.outlook.com

{recipient}
Remote Server returned '{reply}'

Original message headers:

Received: from mail1.contoso.com (203.0.113.10) by AM0PR01MB1234.eurprd01.prod.outlook.com
 (2603:10a6:208:1::14) with Microsoft SMTP Server (version=TLS1_2,
 cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7452.28; Fri, 20 Nov 2026 09:12:01 +0000
Message-ID: <2f1c9a@mail1.contoso.com>
MIME-Version: 1.0

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com
Received-From-MTA: dns;mail1.contoso.com
Arrival-Date: Fri, 20 Nov 2026 09:12:01 +0000

Final-Recipient: rfc822;{recipient}
Action: failed
Status: {status}
Diagnostic-Code: smtp;{reply}
"""


def ndr_ja(recipient: str, reply: str) -> str:
    """An Exchange Online NDR written in Japanese (the recipient's language)."""
    return f"""差出人: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.co.jp>
件名: 配信不能: 四半期報告書

{recipient} へのメッセージを配信できませんでした。
以下の受信者またはグループへの配信に失敗しました:

{recipient}
このメール アドレスへのメッセージの配信中に問題が発生しました。

管理者向けの診断情報:

生成元サーバー: TY0PR01MB5678.jpnprd01.prod.outlook.com

{recipient}
リモート サーバーから '{reply}' が返されました

元のメッセージ ヘッダー:

Received: from mail1.contoso.co.jp (203.0.113.10) by TY0PR01MB5678.jpnprd01.prod.outlook.com
 with Microsoft SMTP Server (version=TLS1_2) id 15.20.7452.28
"""


def queue_viewer(reply: str) -> str:
    return (
        "Identity: EX01\\3\nDeliveryType: SmartHostConnectorDelivery\n"
        "NextHopDomain: contoso-com.mail.protection.outlook.com\nStatus: Retry\nMessageCount: 14\n"
        f"LastError: [{{LRT=11/20/2026 9:12:01 AM}};{{LED={reply} "
        "[LastAttemptedServerName=contoso-com.mail.protection.outlook.com] "
        "[LastAttemptedIP=52.101.1.1:25]};{FQDN=contoso-com.mail.protection.outlook.com};"
        "{IP=52.101.1.1}]\n"
    )


def postfix(reply: str, *, dsn: str, status: str, stage: str = "end of DATA command") -> str:
    return (
        "Nov 20 09:12:01 mx1 postfix/smtp[12345]: 4F2A1C0: to=<kate@tailspintoys.com>, "
        "relay=contoso-com.mail.protection.outlook.com[52.101.1.1]:25, delay=0.9, "
        f"delays=0.1/0/0.4/0.4, dsn={dsn}, status={status} (host "
        f"contoso-com.mail.protection.outlook.com[52.101.1.1] said: {reply} "
        f"[AM0PR01MB1234.eurprd01.prod.outlook.com] (in reply to {stage}))"
    )


def protocol_log(reply: str) -> str:
    """Exchange SendProtocol log lines around the refusal (2.x.x replies are not failures)."""
    lines = [
        "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
        "remote-endpoint,event,data,context",
        "2026-11-20T09:12:01.001Z,Outbound to Office 365,08DE0A1B2C3D4E5F,0,10.0.0.5:27891,"
        "52.101.1.1:25,*,,attempting to connect",
        "2026-11-20T09:12:01.050Z,Outbound to Office 365,08DE0A1B2C3D4E5F,1,10.0.0.5:27891,"
        "52.101.1.1:25,<,220 AM0PR01MB1234.mail.protection.outlook.com Microsoft ESMTP MAIL "
        "Service ready,",
        "2026-11-20T09:12:01.300Z,Outbound to Office 365,08DE0A1B2C3D4E5F,9,10.0.0.5:27891,"
        "52.101.1.1:25,<,250 2.1.0 Sender OK,",
        f"2026-11-20T09:12:01.400Z,Outbound to Office 365,08DE0A1B2C3D4E5F,11,10.0.0.5:27891,"
        f"52.101.1.1:25,<,{reply},",
    ]
    return "\n".join(lines) + "\n"


def transcript(reply: str) -> str:
    """A telnet/openssl session typed by hand."""
    return (
        "220 AM0PR01MB1234.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready\n"
        "EHLO mail1.contoso.com\n250-AM0PR01MB1234.mail.protection.outlook.com Hello\n"
        "250-SIZE 157286400\n250 STARTTLS\nMAIL FROM:<>\n250 2.1.0 Sender OK\n"
        f"RCPT TO:<kate@tailspintoys.com>\n{reply}\nQUIT\n221 2.0.0 Service closing\n"
    )


def trace_detail_row(reply: str) -> str:
    """A Get-MessageTraceDetailV2 | Export-Csv row (the Fail event carries the reply)."""
    return (
        '"2026-11-20T09:12:01.0000000Z","Fail","","Reason: [{LED='
        + reply.replace('"', '""')
        + '};{MSG=};{FQDN=};{IP=};{LRT=}]. OutboundProxyTargetIP: 52.101.1.1.","",'
        '"<2f1c9a@mail1.contoso.com>","7c4d1e8a-1111-2222-3333-444455556666",'
        '"kate@tailspintoys.com","john@contoso.com"'
    )


CASES: tuple[Bounce, ...] = (
    # --- NDRs with headers and the DSN part (the DSN repeats the status: one answer)
    Bounce(
        "ndr-tenant-attribution",
        "ndr",
        ndr("kate@tailspintoys.com", TENANT_ATTRIBUTION, status="5.7.64"),
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
        Scenario.ACCEPTED_SENDER,
    ),
    Bounce(
        "ndr-attr36",
        "ndr",
        ndr("kate@tailspintoys.com", ATTR36, status="5.7.64"),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
        Scenario.FORWARDING,
    ),
    Bounce(
        "ndr-direct-send",
        "ndr",
        ndr("kate@contoso.com", DIRECT_SEND, status="5.7.68"),
        (("550 5.7.68 TenantInboundAttribution", "direct-send-rejected", PERMANENT),),
        Scenario.TO_TENANT,
    ),
    Bounce(
        "ndr-unregistered",
        "ndr",
        ndr("a@fabrikam.net", UNREGISTERED, status="5.7.750"),
        (("550 5.7.750", "unregistered-domains", PERMANENT),),
        Scenario.UNREGISTERED_SENDER,
    ),
    Bounce(
        "ndr-loop",
        "ndr",
        ndr("sales@contoso.com", ATTR34, status="5.4.14"),
        (("554 5.4.14 ATTR34", "mail-loop", PERMANENT),),
    ),
    Bounce(
        "ndr-ip-block",
        "ndr",
        ndr("kate@tailspintoys.com", IP_BLOCK, status="5.7.708"),
        (("550 5.7.708", "ip-not-accepted", PERMANENT),),
    ),
    Bounce(
        "ndr-threshold",
        "ndr",
        ndr("kate@tailspintoys.com", THRESHOLD, status="5.7.705"),
        (("5.7.705", "tenant-threshold", PERMANENT),),
    ),
    Bounce(
        "ndr-unknown-code-known-token",
        "ndr",
        ndr("kate@contoso.com", PARTNER_51, status="5.7.51"),
        (("550 5.7.51 TenantInboundAttribution", "direct-send-rejected", PERMANENT),),
    ),
    Bounce(
        "ndr-tes-block",
        "ndr",
        ndr("kate@tailspintoys.com", TES_BLOCK, status="5.7.230"),
        (("550 5.7.230", "out-of-date-exchange", PERMANENT),),
    ),
    # --- Exchange queue viewer / Get-Queue
    Bounce(
        "queue-wrong-region",
        "queue",
        queue_viewer(ATTR35),
        (("451 4.4.62 ATTR35", "wrong-region", TEMPORARY),),
        Scenario.NDR,
    ),
    Bounce(
        "queue-untrusted-root",
        "queue",
        queue_viewer(UNTRUSTED_ROOT),
        (("450 4.4.317 UntrustedRoot", "untrusted-root", TEMPORARY),),
    ),
    Bounce(
        "queue-starttls-wrapped",
        "queue",
        queue_viewer(
            "450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is "
            "required to send mail]"
        ),
        (("451 5.7.3", "starttls-required", PERMANENT),),
    ),
    Bounce(
        "queue-send-connector",
        "queue",
        queue_viewer(SEND_CONNECTOR),
        (("454 4.7.5", "send-connector-certificate", TEMPORARY),),
    ),
    Bounce(
        "queue-tes-throttle",
        "queue",
        queue_viewer(TES_THROTTLE),
        (("450 4.7.230", "out-of-date-exchange", TEMPORARY),),
    ),
    Bounce(
        "queue-attr36-2016",
        "queue",
        queue_viewer(ATTR36_2016),
        (("451 4.4.4 ATTR36", "attr36", TEMPORARY),),
        Scenario.NDR,
    ),
    Bounce(
        "queue-legacy-tls",
        "queue",
        queue_viewer(LEGACY_TLS),
        (("421 4.7.66", "legacy-tls", TEMPORARY),),
    ),
    # --- Postfix
    Bounce(
        "postfix-deferred-attr35",
        "postfix",
        postfix(ATTR35, dsn="4.4.62", status="deferred"),
        (("451 4.4.62 ATTR35", "wrong-region", TEMPORARY),),
    ),
    Bounce(
        "postfix-bounced-tenant-attribution",
        "postfix",
        postfix(TENANT_ATTRIBUTION, dsn="5.7.64", status="bounced", stage="RCPT TO command"),
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
    Bounce(
        "postfix-bounced-attr36",
        "postfix",
        postfix(ATTR36, dsn="5.7.64", status="bounced", stage="RCPT TO command"),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
        Scenario.UNREGISTERED_SENDER,
    ),
    Bounce(
        "postfix-deferred-attr36-2016",
        "postfix",
        postfix(ATTR36_2016, dsn="4.4.4", status="deferred", stage="RCPT TO command"),
        (("451 4.4.4 ATTR36", "attr36", TEMPORARY),),
    ),
    Bounce(
        "postfix-two-errors",
        "postfix",
        postfix(ATTR35, dsn="4.4.62", status="deferred")
        + "\n"
        + postfix(TENANT_ATTRIBUTION, dsn="5.7.64", status="bounced", stage="RCPT TO command"),
        (
            ("451 4.4.62 ATTR35", "wrong-region", TEMPORARY),
            ("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),
        ),
    ),
    Bounce(
        "postfix-three-lines-two-statuses",
        "postfix",
        "\n".join(
            [
                postfix(ATTR36, dsn="5.7.64", status="bounced", stage="RCPT TO command"),
                postfix(ATTR36, dsn="5.7.64", status="bounced", stage="RCPT TO command"),
                postfix(UNTRUSTED_ROOT, dsn="4.4.317", status="deferred"),
            ]
        ),
        (
            ("550 5.7.64 ATTR36", "attr36", PERMANENT),
            ("450 4.4.317 UntrustedRoot", "untrusted-root", TEMPORARY),
        ),
    ),
    Bounce(
        "postfix-direct-send",
        "postfix",
        postfix(DIRECT_SEND, dsn="5.7.68", status="bounced", stage="RCPT TO command"),
        (("550 5.7.68 TenantInboundAttribution", "direct-send-rejected", PERMANENT),),
    ),
    Bounce(
        "postfix-legacy-tls",
        "postfix",
        postfix(LEGACY_TLS, dsn="4.7.66", status="deferred", stage="STARTTLS command"),
        (("421 4.7.66", "legacy-tls", TEMPORARY),),
    ),
    Bounce(
        "postfix-multiline-reply",
        "postfix",
        "Nov 20 09:12:01 mx1 postfix/smtp[12345]: 4F2A1C0: to=<kate@tailspintoys.com>, "
        "dsn=5.7.64, status=bounced (host x[52.101.1.1] said: 550-5.7.64 TenantAttribution; "
        "Relay Access Denied 550 5.7.64 SMTP (in reply to RCPT TO command))",
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
    # --- SMTP protocol logs and hand-typed sessions
    Bounce(
        "protocol-tenant-attribution",
        "protocol-log",
        protocol_log(TENANT_ATTRIBUTION),
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
    Bounce(
        "protocol-attr36",
        "protocol-log",
        protocol_log(ATTR36),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
    ),
    Bounce(
        "protocol-wrong-region",
        "protocol-log",
        protocol_log(ATTR35),
        (("451 4.4.62 ATTR35", "wrong-region", TEMPORARY),),
    ),
    Bounce(
        "protocol-legacy-tls",
        "protocol-log",
        protocol_log(LEGACY_TLS),
        (("421 4.7.66", "legacy-tls", TEMPORARY),),
    ),
    Bounce(
        "transcript-ndr-attr36",
        "transcript",
        transcript(ATTR36),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
        Scenario.NDR,
    ),
    Bounce(
        "transcript-tes-block",
        "transcript",
        transcript(TES_BLOCK),
        (("550 5.7.230", "out-of-date-exchange", PERMANENT),),
    ),
    Bounce(
        "transcript-bare-5.7.64",
        "transcript",
        transcript("550 5.7.64 Relay Access Denied"),
        (("550 5.7.64", "relay-access-denied", PERMANENT),),
    ),
    # --- message-trace rows
    Bounce(
        "trace-tenant-attribution",
        "message-trace",
        trace_detail_row(TENANT_ATTRIBUTION),
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
    Bounce(
        "trace-attr36",
        "message-trace",
        trace_detail_row(ATTR36),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
    ),
    Bounce(
        "trace-direct-send",
        "message-trace",
        trace_detail_row(DIRECT_SEND),
        (("550 5.7.68 TenantInboundAttribution", "direct-send-rejected", PERMANENT),),
    ),
    Bounce(
        "trace-unregistered",
        "message-trace",
        trace_detail_row(UNREGISTERED),
        (("550 5.7.750", "unregistered-domains", PERMANENT),),
    ),
    Bounce(
        "trace-two-rows",
        "message-trace",
        trace_detail_row(ATTR36) + "\n" + trace_detail_row(TENANT_ATTRIBUTION),
        (
            ("550 5.7.64 ATTR36", "attr36", PERMANENT),
            ("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),
        ),
    ),
    # --- Japanese NDR bodies
    Bounce(
        "ja-ndr-tenant-attribution",
        "ndr-ja",
        ndr_ja("kate@tailspintoys.com", TENANT_ATTRIBUTION),
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
    Bounce(
        "ja-ndr-attr36",
        "ndr-ja",
        ndr_ja("kate@tailspintoys.com", ATTR36),
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
        Scenario.FORWARDING,
    ),
    Bounce(
        "ja-notice-2016",
        "ndr-ja",
        "MTA は以下のメッセージにより転送が拒否されます。\n"
        f'"{ATTR36_2016}"\n(451 4.4.4 リレー アクセスが拒否されました。未承認の送信者ドメインです。ATTR36)',
        (("451 4.4.4 ATTR36", "attr36", TEMPORARY),),
        Scenario.NDR,
    ),
    Bounce(
        "ja-full-width-digits",
        "ndr-ja",
        "リモート サーバーから '５５０ ５．７．６４ Ｒｅｌａｙ Ａｃｃｅｓｓ Ｄｅｎｉｅｄ ＡＴＴＲ３６' が返されました",
        (("550 5.7.64 ATTR36", "attr36", PERMANENT),),
    ),
    Bounce(
        "ja-ndr-untrusted-root",
        "ndr-ja",
        ndr_ja("kate@tailspintoys.com", UNTRUSTED_ROOT),
        (("450 4.4.317 UntrustedRoot", "untrusted-root", TEMPORARY),),
    ),
    Bounce(
        "ja-ndr-wrong-region",
        "ndr-ja",
        ndr_ja("kate@tailspintoys.com", ATTR35),
        (("451 4.4.62 ATTR35", "wrong-region", TEMPORARY),),
    ),
    # --- Slack's escaping of a pasted NDR line
    Bounce(
        "slack-escaped",
        "slack",
        "Remote Server returned &lt;550 5.7.64 TenantAttribution; Relay Access Denied&gt; "
        "&amp; nothing else",
        (("550 5.7.64 TenantAttribution", "tenant-attribution", PERMANENT),),
    ),
)
