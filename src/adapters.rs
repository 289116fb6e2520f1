//! Binds the actors' ports to PostgreSQL ([`PgStore`]) and Redis ([`RedisBus`]).

use crate::bus::RedisBus;
use crate::store::{self, PgStore, port_error};
use async_trait::async_trait;
use paranimo_actors::domain::{Booking, WeeklyAvailability};
use paranimo_actors::ids::{BookingId, TherapistId, UserId};
use paranimo_actors::ports::{
    Attendance, BookingLookup, CalendarSnapshot, CalendarStore, MessageStore, NewBooking,
    NewMessage, PortError, RoomStore, StoredBooking,
};
use paranimo_actors::protocol::ChatMessage;
use serde_json::json;
use std::sync::Arc;

/// The store ports: durable state in PostgreSQL, presence in Redis.
#[derive(Clone)]
pub struct Stores {
    pub pg: PgStore,
    pub bus: Arc<RedisBus>,
}

#[async_trait]
impl BookingLookup for Stores {
    async fn find_booking(&self, id: BookingId) -> Result<Option<Booking>, PortError> {
        store::bookings::find(&self.pg.pool, id)
            .await
            .map_err(port_error)
    }
}

#[async_trait]
impl CalendarStore for Stores {
    async fn load_calendar(
        &self,
        therapist: TherapistId,
    ) -> Result<Option<CalendarSnapshot>, PortError> {
        let pool = &self.pg.pool;
        let Some(profile) = store::therapists::profile(pool, therapist)
            .await
            .map_err(port_error)?
        else {
            return Ok(None);
        };
        let availability = store::therapists::availability(pool, therapist)
            .await
            .map_err(port_error)?
            .unwrap_or(WeeklyAvailability {
                timezone: profile.timezone.clone(),
                rules: Vec::new(),
            });
        let bookings = store::bookings::upcoming_for_therapist(pool, therapist)
            .await
            .map_err(port_error)?;
        Ok(Some(CalendarSnapshot {
            availability,
            session_minutes: profile.session_minutes,
            bookings,
        }))
    }

    async fn insert_booking(&self, booking: &NewBooking) -> Result<StoredBooking, PortError> {
        store::bookings::insert(&self.pg.pool, booking).await
    }

    async fn cancel_booking(&self, id: BookingId, by: UserId) -> Result<Booking, PortError> {
        store::bookings::cancel(&self.pg.pool, id, by).await
    }

    async fn save_availability(
        &self,
        therapist: TherapistId,
        availability: &WeeklyAvailability,
    ) -> Result<(), PortError> {
        let mut tx = self.pg.pool.begin().await.map_err(port_error)?;
        store::therapists::replace_availability(&mut tx, therapist, availability)
            .await
            .map_err(port_error)?;
        let event = store::audit::AuditEvent {
            actor: Some(therapist.0),
            action: "availability.updated",
            object_type: "therapist",
            object_id: therapist.to_string(),
            detail: json!({ "rules": availability.rules.len(), "timezone": availability.timezone }),
        };
        store::audit::record(&mut tx, event)
            .await
            .map_err(port_error)?;
        tx.commit().await.map_err(port_error)
    }
}

#[async_trait]
impl MessageStore for Stores {
    async fn insert_message(&self, message: &NewMessage) -> Result<(ChatMessage, bool), PortError> {
        store::messages::insert(&self.pg.pool, message).await
    }
}

#[async_trait]
impl RoomStore for Stores {
    async fn record_attendance(
        &self,
        booking: BookingId,
        user: UserId,
        what: Attendance,
    ) -> Result<(), PortError> {
        store::rooms::record(&self.pg.pool, booking, user, what)
            .await
            .map_err(port_error)
    }

    async fn enter_presence(
        &self,
        room: BookingId,
        user: UserId,
    ) -> Result<Vec<UserId>, PortError> {
        self.bus.enter_presence(room, user).await
    }

    async fn leave_presence(
        &self,
        room: BookingId,
        user: UserId,
    ) -> Result<Vec<UserId>, PortError> {
        self.bus.leave_presence(room, user).await
    }
}
