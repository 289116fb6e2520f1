//! The background sealer: one per process, chaining committed audit rows every
//! [`SEAL_INTERVAL`]. Every node runs one so the chain keeps up with any node down; the
//! chain's advisory lock lets only one of them seal at a time, and the others skip their turn
//! rather than queue behind it.
//!
//! Stopping loses nothing: a round cut short rolls back, leaving its rows unsealed for the
//! next round on any node.

use super::{LockWait, SEAL_BATCH, seal_round};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often the sealer looks for unsealed rows. Also about how long a committed row stays
/// unsealed: short enough that an operator's verification sees a nearly complete chain.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(200);

/// The pause after a failed round, so a database outage costs one error every few seconds
/// rather than five a second.
const FAILED_PAUSE: Duration = Duration::from_secs(5);

/// The running sealer. Dropping it stops the loop at its next pause; a round in progress
/// finishes (or rolls back) first.
pub struct AuditSealer {
    _stop: oneshot::Sender<()>,
}

/// Starts the sealing loop on the current Tokio runtime. The loop holds only the pool: it
/// ends when the returned [`AuditSealer`] is dropped, or with the runtime.
pub fn spawn_sealer(pool: PgPool) -> AuditSealer {
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(seal_until_stopped(pool, stopped));
    AuditSealer { _stop: stop }
}

async fn seal_until_stopped(pool: PgPool, mut stopped: oneshot::Receiver<()>) {
    loop {
        let pause = match seal_round(&pool, LockWait::Skip).await {
            // A full round means more rows are probably waiting: go again at once.
            Ok(Some(sealed)) if sealed == SEAL_BATCH as u64 => Duration::ZERO,
            Ok(_) => SEAL_INTERVAL,
            Err(e) => {
                tracing::error!(error = %e, "sealing audit rows failed; will try again");
                FAILED_PAUSE
            }
        };
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::debug!("audit sealer stopped");
}
