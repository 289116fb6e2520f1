//! What every request handler and connection shares.

use crate::adapters::Stores;
use crate::bus::RedisBus;
use crate::config::Settings;
use crate::ws::connection::ConnectionActor;
use actix::Addr;
use paranimo_actors::calendar::CalendarActor;
use paranimo_actors::ids::{BookingId, TherapistId, UserId};
use paranimo_actors::mailbox::MailboxActor;
use paranimo_actors::registry::Registry;
use paranimo_actors::room::{RoomActor, RoomWindow};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shared application state, one per process.
pub struct AppState {
    pub settings: Settings,
    pub pool: PgPool,
    pub bus: Arc<RedisBus>,
    pub stores: Stores,
    /// Wakes the mail sender; call `wake()` after committing a transaction that called
    /// `email::enqueue`, so the mail leaves now rather than at the next poll.
    pub mail: crate::email::MailWaker,
    pub calendars: Registry<TherapistId, CalendarActor>,
    pub mailboxes: Registry<UserId, MailboxActor>,
    pub rooms: Registry<BookingId, RoomActor>,
    /// Open websockets per session token hash, so signing out closes them at once.
    pub connections: Mutex<HashMap<Vec<u8>, Vec<Addr<ConnectionActor>>>>,
}

impl AppState {
    /// The calendar actor of `therapist`, started if needed.
    pub fn calendar(&self, therapist: TherapistId) -> Addr<CalendarActor> {
        self.calendars.get_or_start(therapist, || {
            CalendarActor::new(therapist, Arc::new(self.stores.clone()), self.bus.clone())
        })
    }

    /// The mailbox actor of `user`, started if needed.
    pub fn mailbox(&self, user: UserId) -> Addr<MailboxActor> {
        self.mailboxes.get_or_start(user, || {
            MailboxActor::new(user, Arc::new(self.stores.clone()), self.bus.clone())
        })
    }

    /// Tells every node these (already deleted) sessions are gone, so their websockets close
    /// at once. This node's sockets close directly; other nodes hear it through Redis.
    pub async fn sessions_revoked(&self, token_hashes: Vec<Vec<u8>>) {
        for hash in &token_hashes {
            crate::ws::close_session_sockets(self, hash, "signed out");
        }
        if let Err(e) = self.bus.publish_revoked(&token_hashes).await {
            tracing::error!(error = %e, "could not announce revoked sessions to other nodes");
        }
    }

    /// The room actor of `booking`, started if needed.
    pub fn room(&self, booking: BookingId) -> Addr<RoomActor> {
        let window = RoomWindow {
            open_before: chrono::Duration::minutes(self.settings.room_opens_minutes_before),
            ..RoomWindow::default()
        };
        self.rooms.get_or_start(booking, || {
            RoomActor::new(
                booking,
                Arc::new(self.stores.clone()),
                self.bus.clone(),
                window,
            )
        })
    }
}
