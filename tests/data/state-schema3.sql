BEGIN TRANSACTION;
CREATE TABLE acknowledgements(
            id INTEGER PRIMARY KEY,
            check_id TEXT NOT NULL, subject TEXT NOT NULL, cause TEXT NOT NULL,
            user TEXT NOT NULL,
            at TEXT NOT NULL
        );
INSERT INTO "acknowledgements" VALUES(1,'cert-expiry','smarthost','','U0ALICE','2026-03-01T09:05:00+00:00');
CREATE TABLE certificates(
            source TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            PRIMARY KEY (source, fingerprint)
        );
INSERT INTO "certificates" VALUES('smarthost/192.0.2.25','abababababababababababababababababababababababababababababababab','{"source": "smarthost/192.0.2.25", "fingerprint": "abababababababababababababababababababababababababababababababab", "subject": "CN=mail.contoso.com", "issuer": "CN=CA", "names": ["mail.contoso.com"], "not_after": "2026-03-06T09:00:00+00:00", "chain_length": 2, "chain_fingerprints": [], "client_auth": true}','2026-03-01T09:00:00+00:00','2026-03-01T09:00:00+00:00');
CREATE TABLE findings(
            check_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            cause TEXT NOT NULL,
            open INTEGER NOT NULL,
            severity_rank INTEGER NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (check_id, subject, cause)
        );
INSERT INTO "findings" VALUES('cert-expiry','smarthost','',1,3,'{"finding": {"check": "cert-expiry", "severity": "critical", "subject": "smarthost", "message": "expires in 5 days", "details": {"days_left": 5}, "cause": ""}, "open": true, "opened_at": "2026-03-01T09:00:00+00:00", "last_seen_at": "2026-03-01T09:00:00+00:00", "resolved_at": null, "alerted_severity": "critical", "alerted_step": 7, "history": [true], "flapping": false, "flap_noted": false, "snooze_broken_at": null, "alert_event": "opened:cert-expiry|smarthost|@2026-03-01T09:00:00+00:00"}');
INSERT INTO "findings" VALUES('mx','contoso.com','mx',1,2,'{"finding": {"check": "mx", "severity": "warning", "subject": "contoso.com", "message": "MX not at Exchange Online", "details": {}, "cause": "mx"}, "open": true, "opened_at": "2026-03-01T09:00:00+00:00", "last_seen_at": "2026-03-01T09:00:00+00:00", "resolved_at": null, "alerted_severity": "warning", "alerted_step": null, "history": [true], "flapping": false, "flap_noted": false, "snooze_broken_at": null, "alert_event": "opened:mx|contoso.com|mx@2026-03-01T09:00:00+00:00"}');
CREATE TABLE job_marks(job TEXT PRIMARY KEY, last_run_at TEXT NOT NULL);
INSERT INTO "job_marks" VALUES('certificates','2026-03-01T09:00:00+00:00');
INSERT INTO "job_marks" VALUES('digest','2026-03-01T09:00:00+00:00');
CREATE TABLE outbox(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            event_id TEXT NOT NULL,
            action TEXT NOT NULL,
            channel TEXT NOT NULL,
            text TEXT NOT NULL,
            blocks TEXT NOT NULL,
            reply_to TEXT,
            keys TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            ts TEXT,
            delivered_at TEXT,
            failed_at TEXT,
            last_error TEXT
        );
INSERT INTO "outbox" VALUES(1,'opened:cert-expiry|smarthost|@2026-03-01T09:00:00+00:00#post','opened:cert-expiry|smarthost|@2026-03-01T09:00:00+00:00','post','C0ALERTS','opened smarthost','[]',NULL,'[["cert-expiry", "smarthost", ""]]','2026-03-01T09:00:00+00:00',0,NULL,'1772355600.000100','2026-03-01T09:00:00+00:00',NULL,NULL);
INSERT INTO "outbox" VALUES(2,'opened:mx|contoso.com|mx@2026-03-01T09:00:00+00:00#post','opened:mx|contoso.com|mx@2026-03-01T09:00:00+00:00','post','C0ALERTS','opened contoso.com','[]',NULL,'[["mx", "contoso.com", "mx"]]','2026-03-01T09:00:00+00:00',0,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE runs(
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            ok INTEGER NOT NULL,
            summary TEXT
        );
INSERT INTO "runs" VALUES(1,'certificates','2026-03-01T09:00:00+00:00','2026-03-01T09:00:03+00:00',1,'{"findings": 2, "events": 2}');
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO "schema_version" VALUES(3);
CREATE TABLE snoozes(
            id INTEGER PRIMARY KEY,
            check_id TEXT NOT NULL, subject TEXT NOT NULL, cause TEXT NOT NULL,
            until TEXT NOT NULL,
            user TEXT NOT NULL,
            at TEXT NOT NULL
        );
INSERT INTO "snoozes" VALUES(1,'mx','contoso.com','mx','2026-03-08T09:00:00+00:00','U0BOB','2026-03-01T09:06:00+00:00');
CREATE TABLE tenant_domains(name TEXT PRIMARY KEY, seen_at TEXT NOT NULL);
INSERT INTO "tenant_domains" VALUES('contoso.co.jp','2026-03-01T09:00:00+00:00');
INSERT INTO "tenant_domains" VALUES('contoso.com','2026-03-01T09:00:00+00:00');
CREATE TABLE tenant_domains_seen(id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT);
INSERT INTO "tenant_domains_seen" VALUES(1,'2026-03-01T09:00:00+00:00');
CREATE INDEX outbox_pending ON outbox(delivered_at, failed_at, seq);
CREATE INDEX outbox_event ON outbox(event_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('outbox',2);
COMMIT;
