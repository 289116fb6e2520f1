//! Transactional mail: the outbox is written in the caller's transaction, and the sender
//! delivers it to a real SMTP server (aiosmtpd, `tests/support/smtp_sink.py`) on loopback,
//! retries while that server is down, and never delivers a mail twice across two senders.

use crate::helpers::{TestApp, TestDatabase};
use paranimo::email::{self, DEFAULT_FROM, Email, MailTransport, Mailer};
use sqlx::{PgPool, Row};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a test waits for mail it expects.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a test watches for mail that must not come: a few of the sender's polls.
const QUIET_PERIOD: Duration = Duration::from_millis(1500);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn smtp_to(port: u16) -> MailTransport {
    format!("smtp://127.0.0.1:{port}")
        .parse()
        .expect("transport")
}

/// The SMTP sink process, killed and its folder removed when dropped.
struct SmtpSink {
    child: Child,
    folder: PathBuf,
}

impl SmtpSink {
    /// Starts the sink on `port` and waits until it accepts connections.
    async fn start(port: u16) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let folder = std::env::temp_dir().join(format!("paranimo-sink-{}", Uuid::new_v4()));
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&folder)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut sink = Self { child, folder };

        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!(
                    "the SMTP sink exited ({status}); is aiosmtpd installed? \
                     (pip install aiosmtpd, or apt-get install python3-aiosmtpd)"
                );
            }
            assert!(Instant::now() < deadline, "the SMTP sink never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sink
    }

    /// Every message received so far, oldest first.
    fn received(&self) -> Vec<String> {
        read_mail_folder(&self.folder)
    }

    /// Waits until at least `count` messages have arrived and returns them all.
    async fn wait_for(&self, count: usize) -> Vec<String> {
        wait_for_files(&self.folder, count).await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The whole files in a mail folder (hidden ones are still being written), by name.
fn read_mail_folder(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return vec![];
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("mail file reads"))
        .collect()
}

async fn wait_for_files(folder: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let mail = read_mail_folder(folder);
        if mail.len() >= count {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} mails arrived within {DELIVERY_TIMEOUT:?}",
            mail.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of a header (unfolded lines only: the tests keep headers short).
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    message
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(prefix.as_str()))
}

fn mail(to: &str, subject: &str, body: &str) -> Email {
    Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body_text: body.to_owned(),
    }
}

/// Queues `email` in a transaction of its own and commits it.
async fn enqueue_committed(pool: &PgPool, email: &Email) -> i64 {
    let mut tx = pool.begin().await.expect("transaction");
    let id = email::enqueue(&mut tx, email).await.expect("enqueue");
    tx.commit().await.expect("commit");
    id
}

/// A mail queued in a transaction that rolls back is never sent; one queued in a committed
/// transaction reaches the SMTP server with its recipient, subject and body.
#[actix_web::test]
async fn committed_mail_is_delivered_and_rolled_back_mail_is_not() {
    let port = free_port();
    let sink = SmtpSink::start(port).await;
    let app = TestApp::spawn_with(|s| s.mail_transport = smtp_to(port)).await;

    let mut tx = app.pool.begin().await.expect("transaction");
    let abandoned = mail("ana@example.test", "Rolled back", "This must never arrive.");
    email::enqueue(&mut tx, &abandoned).await.expect("enqueue");
    tx.rollback().await.expect("rollback");

    let welcome = mail(
        "Bea Client <bea@example.test>",
        "Confirm your address",
        "Open this link to confirm your address:\nhttp://paranimo.test/verify#abc\n",
    );
    let id = enqueue_committed(&app.pool, &welcome).await;

    let received = sink.wait_for(1).await;
    let message = &received[0];
    assert_eq!(header(message, "X-Envelope-To"), Some("bea@example.test"));
    assert_eq!(
        header(message, "To"),
        Some("\"Bea Client\" <bea@example.test>")
    );
    assert_eq!(
        header(message, "From"),
        Some("Paranimo <no-reply@paranimo.test>")
    );
    assert_eq!(header(message, "Subject"), Some("Confirm your address"));
    assert!(
        message.contains("http://paranimo.test/verify#abc"),
        "body missing: {message}"
    );

    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(sink.received().len(), 1, "only the committed mail is sent");
    let row = sqlx::query("SELECT sent_at IS NOT NULL AS sent, attempts FROM email_outbox")
        .fetch_one(&app.pool)
        .await
        .expect("the one outbox row");
    assert!(row.get::<bool, _>("sent"), "outbox row {id} is marked sent");
    assert_eq!(row.get::<i32, _>("attempts"), 1);
}

/// While the SMTP server is down a mail stays queued with its failure counted and a later
/// retry time; once the server is back the mail is delivered, exactly once.
#[actix_web::test]
async fn mail_waits_out_an_smtp_outage_and_is_delivered_once() {
    let port = free_port();
    let app = TestApp::spawn_with(|s| s.mail_transport = smtp_to(port)).await;
    let id = enqueue_committed(&app.pool, &mail("cy@example.test", "Reset", "A link.")).await;

    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let row = loop {
        let row = sqlx::query(
            r#"
            SELECT attempts, sent_at IS NULL AS unsent, last_error,
                   next_attempt_at > now() + interval '5 seconds' AS retry_later
            FROM email_outbox
            WHERE id = $1
            "#,
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .expect("outbox row");
        if row.get::<i32, _>("attempts") >= 1 {
            break row;
        }
        assert!(Instant::now() < deadline, "the sender never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(row.get::<bool, _>("unsent"));
    assert!(row.get::<bool, _>("retry_later"), "the retry is backed off");
    assert_eq!(
        row.get::<Option<String>, _>("last_error").as_deref(),
        Some("connection")
    );

    // The server comes back; skip the rest of the backoff rather than wait ten seconds.
    let sink = SmtpSink::start(port).await;
    sqlx::query("UPDATE email_outbox SET next_attempt_at = now() WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .expect("reschedule");

    let received = sink.wait_for(1).await;
    assert_eq!(header(&received[0], "Subject"), Some("Reset"));
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(sink.received().len(), 1, "delivered exactly once");
    let (sent, attempts): (bool, i32) =
        sqlx::query_as("SELECT sent_at IS NOT NULL, attempts FROM email_outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("outbox row");
    assert!(sent);
    assert_eq!(attempts, 2);
}

/// Two senders on one database, as on two nodes, share the work and deliver each mail
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_deliver_each_mail_exactly_once() {
    const MAILS: usize = 60;
    let database = TestDatabase::create().await;
    let pool = paranimo::store::connect_and_migrate(&database.url)
        .await
        .expect("database");
    let port = free_port();
    let sink = SmtpSink::start(port).await;

    // Each node signs its mail differently, so the test can see that both took part.
    let node = |from: &str| {
        let mailer = Mailer::new(&smtp_to(port), from.parse().expect("mailbox")).expect("mailer");
        email::spawn_sender(pool.clone(), mailer)
    };
    let a = node("Node A <a@paranimo.test>");
    let b = node("Node B <b@paranimo.test>");

    let mut tx = pool.begin().await.expect("transaction");
    for n in 0..MAILS {
        let email = mail(
            &format!("p{n}@example.test"),
            &format!("Mail {n}"),
            "Hello.",
        );
        email::enqueue(&mut tx, &email).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
    a.waker().wake();
    b.waker().wake();

    sink.wait_for(MAILS).await;
    tokio::time::sleep(QUIET_PERIOD).await;
    let received = sink.received();
    assert_eq!(received.len(), MAILS, "no mail delivered twice");

    let subjects: BTreeSet<&str> = received
        .iter()
        .map(|m| header(m, "Subject").expect("subject"))
        .collect();
    let expected: BTreeSet<String> = (0..MAILS).map(|n| format!("Mail {n}")).collect();
    assert_eq!(
        subjects,
        expected.iter().map(String::as_str).collect(),
        "every mail delivered"
    );
    let senders: BTreeSet<&str> = received
        .iter()
        .map(|m| header(m, "From").expect("from"))
        .collect();
    assert_eq!(senders.len(), 2, "both senders delivered some: {senders:?}");

    let resent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_outbox WHERE sent_at IS NULL OR attempts <> 1",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(resent, 0, "every row sent at its first attempt");
}

/// The development transport writes each mail as an RFC 5322 file named after its outbox
/// id, and a mail whose address cannot be parsed is given up at once, kept for an operator.
#[actix_web::test]
async fn the_folder_transport_writes_eml_files_and_bad_addresses_are_given_up() {
    let folder = std::env::temp_dir().join(format!("paranimo-mail-{}", Uuid::new_v4()));
    let dir = folder.clone();
    let app = TestApp::spawn_with(move |s| s.mail_transport = MailTransport::Folder(dir)).await;

    let bad = enqueue_committed(&app.pool, &mail("not an address", "Lost", "Never.")).await;
    // Longer than quoted-printable's 76 columns: the folder keeps the link on one line.
    let link = format!(
        "http://127.0.0.1:8080/verify-email#token={}",
        "x".repeat(43)
    );
    let good = enqueue_committed(&app.pool, &mail("di@example.test", "Hello", &link)).await;

    let files = wait_for_files(&folder, 1).await;
    let message = &files[0];
    assert_eq!(header(message, "From"), Some(DEFAULT_FROM));
    assert_eq!(header(message, "To"), Some("di@example.test"));
    assert_eq!(header(message, "Subject"), Some("Hello"));
    assert!(header(message, "Date").is_some() && header(message, "Message-ID").is_some());
    assert_eq!(header(message, "Content-Transfer-Encoding"), Some("8bit"));
    assert!(
        message.lines().any(|l| l == link),
        "link kept whole: {message}"
    );
    let name = std::fs::read_dir(&folder)
        .expect("folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".eml"))
        .expect("a file");
    assert!(name.ends_with(&format!("-{good}.eml")), "file name {name}");

    let row = sqlx::query(
        r#"
        SELECT attempts, last_error, sent_at IS NULL AS unsent,
               next_attempt_at = 'infinity' AS given_up
        FROM email_outbox
        WHERE id = $1
        "#,
    )
    .bind(bad)
    .fetch_one(&app.pool)
    .await
    .expect("outbox row");
    assert_eq!(row.get::<i32, _>("attempts"), 1);
    assert_eq!(
        row.get::<Option<String>, _>("last_error").as_deref(),
        Some("address")
    );
    assert!(row.get::<bool, _>("unsent") && row.get::<bool, _>("given_up"));

    let _ = std::fs::remove_dir_all(&folder);
}
