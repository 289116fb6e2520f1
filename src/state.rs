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
