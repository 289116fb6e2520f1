//! Transactional email through an outbox.
//!
//! A handler that causes a mail (a registration, a password reset) calls [`enqueue`] inside
//! its own transaction: the mail is a row in `email_outbox`, committed or rolled back with the
//! change, so a failed change sends nothing and a committed one cannot lose its mail to a
//! crash or an SMTP outage. After the commit it may call [`MailWaker::wake`] so the mail
//! leaves at once instead of at the sender's next poll.
//!
//! The sender ([`spawn_sender`], one per process) claims due rows with `FOR UPDATE SKIP
//! LOCKED`, so several nodes never send the same row, and retries failures with exponential
//! backoff. Where mail goes is a [`MailTransport`]: an SMTP server, or a folder of `.eml`
//! files (the development default, so a developer can read what would have been sent).
//!
//! Mail holds personal data and often a secret link: no log line carries an address, a
//! subject or a body. Logs name outbox ids, attempt counts and error kinds.
//!
//! Layout: [`outbox`] holds the SQL, [`transport`] turns a row into a sent message, [`sender`]
//! is the delivery loop.

mod outbox;
mod sender;
mod transport;

use sqlx::PgConnection;
use std::fmt;

pub use lettre::message::Mailbox;
pub use sender::{MAX_ATTEMPTS, MailSender, MailWaker, backoff, spawn_sender};
pub use transport::{
    DEFAULT_FROM, DEVELOPMENT_MAIL_FOLDER, MailTransport, Mailer, SendError, SmtpCredentials,
    SmtpTls,
};

/// One plain-text mail to one person, as the code that causes it describes it. The sender
/// adds `From` (`MAIL_FROM`), `Date` and `Message-ID`.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient, a bare address (`ana@example.com`) or a name and address
    /// (`Ana <ana@example.com>`).
    pub to: String,
    pub subject: String,
    pub body_text: String,
}

/// Shows only the lengths: an `Email` debug-printed into a log or a panic message must not
/// leak the address or a sign-in link in the body.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &"[redacted]")
            .field("subject_len", &self.subject.len())
            .field("body_len", &self.body_text.len())
            .finish()
    }
}

/// Queues `email` inside the caller's transaction and returns its outbox id. Nothing is sent
/// until that transaction commits; a rollback discards the mail with everything else.
///
/// The address is not checked here: the caller has already validated it, and one the sender
/// cannot parse is given up on at its first attempt (see [`SendError::is_permanent`]).
pub async fn enqueue(tx: &mut PgConnection, email: &Email) -> Result<i64, sqlx::Error> {
    outbox::insert(tx, email).await
}
