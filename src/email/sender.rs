//! The delivery loop: one per process, claiming due mail from the outbox and sending it,
//! retrying failures with exponential backoff.
//!
//! Each round is one transaction: claim up to [`BATCH`] due rows with `FOR UPDATE SKIP
//! LOCKED`, send each, record each outcome, commit. A row stays locked while it is being
//! sent, so a sender on another node skips it instead of sending it too.
//!
//! Delivery is at least once, not exactly once: SMTP has no way to ask "did you already get
//! this?", so a process that dies between a server's "250 OK" and the commit sends that
//! round's mails again when it (or another node) next claims them.

use super::outbox::{self, Due};
use super::transport::Mailer;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// How often the sender looks for due mail when nobody wakes it. Also the longest a
/// retry can be late, and the delay before a mail whose enqueuer did not wake the sender.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The pause after the outbox itself could not be read, so a database outage costs one
/// warning every few seconds rather than two a second.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(5);

/// Mails claimed per round. Bounds how long one transaction holds its locks (each SMTP
/// command has its own timeout) and how many mails a crash may send twice.
const BATCH: i64 = 20;

/// Failed attempts after which a mail is left for an operator (about 85 minutes of
/// retrying with [`backoff`]).
pub const MAX_ATTEMPTS: i32 = 10;

/// The wait after a first failure; it doubles with each further failure.
const FIRST_RETRY: Duration = Duration::from_secs(10);

/// The longest wait between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(60 * 60);

/// How long to wait after the `failed_attempts`-th failure: 10 s, 20 s, 40 s, … doubling,
/// capped at an hour.
pub fn backoff(failed_attempts: i32) -> Duration {
    let doublings = failed_attempts.saturating_sub(1).clamp(0, 16) as u32;
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Wakes the sender so a just-committed mail leaves now rather than at the next poll.
/// Cheap to clone; waking a sender that is busy makes it look again as soon as it is done.
#[derive(Clone, Default)]
pub struct MailWaker(Arc<Notify>);

impl MailWaker {
    /// Call after the commit: before it, the sender cannot see the mail yet.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The running sender. Dropping it stops the loop at its next pause; a round in progress
/// finishes first, so no mail is sent without its outcome being recorded.
pub struct MailSender {
    waker: MailWaker,
    _stop: oneshot::Sender<()>,
}

impl MailSender {
    /// A handle that request handlers keep to wake this sender.
    pub fn waker(&self) -> MailWaker {
        self.waker.clone()
    }
}

/// Starts the delivery loop on the current Tokio runtime and says at start-up where mail
/// goes. The loop holds no strong reference to the application: it ends when the returned
/// [`MailSender`] is dropped, or with the runtime.
pub fn spawn_sender(pool: PgPool, mailer: Mailer) -> MailSender {
    announce(&mailer);
    let waker = MailWaker::default();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(deliver_until_stopped(
        pool,
        mailer,
        waker.0.clone(),
        stopped,
    ));
    MailSender { waker, _stop: stop }
}

fn announce(mailer: &Mailer) {
    match mailer.transport() {
        super::MailTransport::Folder(dir) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            tracing::info!(
                folder = %dir.display(),
                "mail is written to files in this folder, not sent; set MAIL_TRANSPORT to \
                 send it"
            );
        }
        smtp => tracing::info!(transport = %smtp, "mail is sent through SMTP"),
    }
}

async fn deliver_until_stopped(
    pool: PgPool,
    mailer: Mailer,
    wake: Arc<Notify>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let pause = match deliver_due(&pool, &mailer).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => POLL_INTERVAL,
            Err(e) => {
                tracing::warn!(error = %e, "mail outbox unavailable; will try again");
                UNAVAILABLE_PAUSE
            }
        };
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::debug!("mail sender stopped");
}

/// One round: claims due mail, sends it, records each outcome, commits. Returns true when
/// more mail may be due at once: the round was full and the server reachable throughout.
async fn deliver_due(pool: &PgPool, mailer: &Mailer) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due = outbox::claim_due(&mut tx, BATCH).await?;
    let mut more = due.len() == BATCH as usize;
    for Due {
        id,
        attempts,
        queued_at,
        email,
    } in &due
    {
        let attempt = attempts + 1;
        match mailer.send(*id, *queued_at, email).await {
            Ok(()) => {
                outbox::mark_sent(&mut tx, *id).await?;
                tracing::info!(outbox_id = id, attempt, "mail sent");
            }
            Err(e) if e.is_permanent() || attempt >= MAX_ATTEMPTS => {
                outbox::mark_failed(&mut tx, *id, &e.kind(), None).await?;
                tracing::error!(
                    outbox_id = id,
                    attempt,
                    error = %e,
                    "mail given up on; it stays in email_outbox for an operator"
                );
            }
            Err(e) => {
                let retry_in = backoff(attempt);
                outbox::mark_failed(&mut tx, *id, &e.kind(), Some(retry_in)).await?;
                tracing::warn!(
                    outbox_id = id,
                    attempt,
                    error = %e,
                    retry_in_seconds = retry_in.as_secs(),
                    "mail not sent; will retry"
                );
                // The rest stay due, untouched, for a later round.
                if e.is_server_unreachable() {
                    more = false;
                    break;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_an_hour() {
        let waits: Vec<u64> = (1..=MAX_ATTEMPTS).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
        assert_eq!(backoff(0), FIRST_RETRY);
        assert_eq!(backoff(i32::MAX), MAX_RETRY);
    }
}
