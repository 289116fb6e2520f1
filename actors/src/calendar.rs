//! `CalendarActor`: one per therapist. It caches the weekly pattern and the confirmed bookings
//! that have not ended, and serialises every change to that therapist's calendar.
//!
//! Invariants:
//! - Changes run one at a time (`AtomicResponse`), so two local requests for one slot never
//!   interleave; the database's exclusion constraint catches races with other nodes.
//! - A change is answered only after it is committed, and its events are published only after
//!   commit.
//! - The cache can be thrown away at any time: it is rebuilt from the store, and it follows
//!   other nodes' changes through the therapist's calendar and availability topics.

use crate::domain::{
    BOOKING_HORIZON, Booking, Slot, WeeklyAvailability, free_slots, offered_slots,
};
use crate::ids::{BookingId, TherapistId};
use crate::policy::{Action, Principal, may};
use crate::ports::{
    CalendarSnapshot, CalendarStore, EventBus, NewBooking, PortError, SubscriberId, TopicBatch,
};
use crate::protocol::{Event, Topic};
use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A calendar nobody has used for this long stops and frees its memory.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How often an actor checks whether it has been idle too long.
const IDLE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Queued messages (mostly topic events) before the event bus sees this actor as full.
const MAILBOX_CAPACITY: usize = 1024;

/// Why a calendar command was refused. Each maps to one HTTP status in `src/http/error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// No such therapist, or no public profile yet.
    #[error("therapist not found")]
    TherapistNotFound,
    /// No such booking, or not one this user may touch.
    #[error("booking not found")]
    BookingNotFound,
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// The start time is not one of the therapist's offered slots.
    #[error("that time is not an available slot")]
    NotOffered,
    /// The slot starts in the past.
    #[error("that time is in the past")]
    InPast,
    /// Someone else holds the slot (or the client has another session then).
    #[error("that slot has just been taken")]
    SlotTaken,
    /// The idempotency key was already used for a different booking.
    #[error("that Idempotency-Key was already used for a different booking")]
    KeyReused,
    /// The client already holds the most upcoming sessions one client may.
    #[error("you already have the most upcoming sessions one person can book")]
    TooManyBookings,
    /// The session has already started or ended and cannot be cancelled.
    #[error("the session has already started")]
    AlreadyStarted,
    #[error("invalid availability: {0}")]
    InvalidAvailability(#[from] crate::domain::AvailabilityError),
    #[error(transparent)]
    Port(PortError),
}

impl From<PortError> for CalendarError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Conflict => CalendarError::SlotTaken,
            PortError::NotFound => CalendarError::BookingNotFound,
            PortError::LimitReached => CalendarError::TooManyBookings,
            other => CalendarError::Port(other),
        }
    }
}

/// Free slots in `[from, to)`.
#[derive(Message)]
#[rtype(result = "Result<Vec<Slot>, CalendarError>")]
pub struct ListFreeSlots {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Book the slot starting at `start` for the calling client. Answers the booking and whether
/// it is new (false when the idempotency key matched an earlier booking).
#[derive(Message)]
#[rtype(result = "Result<(Booking, bool), CalendarError>")]
pub struct Book {
    pub client: Principal,
    pub start: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

/// Cancel a booking; either party may.
#[derive(Message)]
#[rtype(result = "Result<Booking, CalendarError>")]
pub struct Cancel {
    pub by: Principal,
    pub booking: BookingId,
}

/// Replace the therapist's weekly pattern.
#[derive(Message)]
#[rtype(result = "Result<(), CalendarError>")]
pub struct SetAvailability {
    pub by: Principal,
    pub availability: WeeklyAvailability,
}

/// The cached view of the calendar, once loaded.
struct Loaded {
    availability: WeeklyAvailability,
    tz: Tz,
    session: Duration,
    bookings: HashMap<BookingId, Slot>,
}

impl Loaded {
    fn from_snapshot(snapshot: CalendarSnapshot) -> Result<Self, CalendarError> {
        let tz = snapshot.availability.validate()?;
        let bookings = snapshot.bookings.iter().map(|b| (b.id, b.slot())).collect();
        Ok(Self {
            availability: snapshot.availability,
            tz,
            session: Duration::minutes(i64::from(snapshot.session_minutes)),
            bookings,
        })
    }

    fn free(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Slot> {
        let offered = offered_slots(&self.availability, self.tz, self.session, from, to);
        free_slots(offered, self.bookings.values(), now)
    }

    /// The offered slot starting exactly at `start`, if any.
    fn offered_at(&self, start: DateTime<Utc>) -> Option<Slot> {
        offered_slots(
            &self.availability,
            self.tz,
            self.session,
            start,
            start + Duration::seconds(1),
        )
        .into_iter()
        .find(|slot| slot.start == start)
    }
}

/// One therapist's calendar. See the module documentation for its invariants.
pub struct CalendarActor {
    therapist: TherapistId,
    store: Arc<dyn CalendarStore>,
    bus: Arc<dyn EventBus>,
    cache: Option<Loaded>,
    last_active: Instant,
    /// Our registration with the event bus, removed when the actor stops.
    subscriber: SubscriberId,
}

impl CalendarActor {
    /// A calendar for `therapist`; its state is loaded on first use.
    pub fn new(
        therapist: TherapistId,
        store: Arc<dyn CalendarStore>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        let subscriber = bus.next_subscriber_id();
        Self {
            therapist,
            store,
            bus,
            cache: None,
            last_active: Instant::now(),
            subscriber,
        }
    }

    /// Runs `work` with a loaded cache, loading it from the store first when needed. The
    /// whole thing is atomic with respect to other messages to this actor.
    fn with_cache<T: 'static>(
        &mut self,
        work: impl FnOnce(&mut Self) -> ResponseActFuture<Self, Result<T, CalendarError>> + 'static,
    ) -> AtomicResponse<Self, Result<T, CalendarError>> {
        self.last_active = Instant::now();
        if self.cache.is_some() {
            return AtomicResponse::new(work(self));
        }
        let store = self.store.clone();
        let therapist = self.therapist;
        let load = async move { store.load_calendar(therapist).await };
        AtomicResponse::new(Box::pin(load.into_actor(self).then(
            move |loaded, act, _| {
                let loaded = match loaded {
                    Ok(Some(snapshot)) => Loaded::from_snapshot(snapshot),
                    Ok(None) => Err(CalendarError::TherapistNotFound),
                    Err(e) => Err(e.into()),
                };
                match loaded {
                    Ok(cache) => {
                        act.cache = Some(cache);
                        work(act)
                    }
                    Err(e) => Box::pin(fut::ready(Err(e))),
                }
            },
        )))
    }

    fn publish_all(&self, events: Vec<(Topic, Event)>) -> impl Future<Output = ()> + 'static {
        let bus = self.bus.clone();
        let therapist = self.therapist;
        async move {
            for (topic, event) in events {
                if let Err(e) = bus.publish(topic, event).await {
                    // The change is committed; subscribers that miss this event will see a
                    // gap in sequence numbers or refetch on their next snapshot.
                    tracing::error!(%therapist, %topic, error = %e, "publishing a calendar event failed");
                }
            }
        }
    }
}

impl Actor for CalendarActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(therapist = %self.therapist, "calendar actor started");
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);

        // Follow our own topics so changes made on other nodes reach this cache.
        let bus = self.bus.clone();
        let recipient = ctx.address().recipient();
        let therapist = self.therapist;
        let id = self.subscriber;
        ctx.spawn(
            async move {
                for topic in [Topic::Calendar(therapist), Topic::Availability(therapist)] {
                    if let Err(e) = bus.subscribe(topic, id, recipient.clone()).await {
                        tracing::error!(%therapist, error = %e, "calendar could not follow its topics");
                    }
                }
            }
            .into_actor(self),
        );

        ctx.run_interval(IDLE_CHECK_EVERY, |act, ctx| {
            if act.last_active.elapsed() > IDLE_TIMEOUT {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        for topic in [
            Topic::Calendar(self.therapist),
            Topic::Availability(self.therapist),
        ] {
            self.bus.unsubscribe(topic, self.subscriber);
        }
        tracing::debug!(therapist = %self.therapist, "calendar actor stopped");
    }
}

impl Handler<ListFreeSlots> for CalendarActor {
    type Result = AtomicResponse<Self, Result<Vec<Slot>, CalendarError>>;

    fn handle(&mut self, msg: ListFreeSlots, _ctx: &mut Self::Context) -> Self::Result {
        self.with_cache(move |act| {
            let now = Utc::now();
            let from = msg.from.max(now);
            let to = msg.to.min(now + BOOKING_HORIZON);
            let slots = match &act.cache {
                Some(cache) if from < to => cache.free(from, to, now),
                _ => Vec::new(),
            };
            Box::pin(fut::ready(Ok(slots)))
        })
    }
}

impl Handler<Book> for CalendarActor {
    type Result = AtomicResponse<Self, Result<(Booking, bool), CalendarError>>;

    fn handle(&mut self, msg: Book, _ctx: &mut Self::Context) -> Self::Result {
        self.with_cache(move |act| {
            // Check what we can in memory first: most refusals never reach the database.
            let checked = act.check_bookable(&msg);
            let slot = match checked {
                Ok(slot) => slot,
                Err(e) => return Box::pin(fut::ready(Err(e))),
            };

            let request = NewBooking {
                therapist_id: act.therapist,
                client_id: msg.client.user_id,
                slot,
                idempotency_key: msg.idempotency_key,
            };
            let store = act.store.clone();
            let insert = async move { store.insert_booking(&request).await };

            Box::pin(insert.into_actor(act).then(move |stored, act, _| {
                let stored = match stored {
                    Ok(stored) => stored,
                    Err(PortError::Conflict) => {
                        // Another node won the race: forget our cache so the next request
                        // sees the booking that beat us.
                        act.cache = None;
                        return Box::pin(fut::ready(Err(CalendarError::SlotTaken)))
                            as ResponseActFuture<Self, _>;
                    }
                    Err(e) => return Box::pin(fut::ready(Err(e.into()))),
                };

                let booking = stored.booking;
                if let Some(cache) = act.cache.as_mut() {
                    cache.bookings.insert(booking.id, booking.slot());
                }
                if !stored.created {
                    // The key matched an earlier booking: only a true retry gets it back.
                    let same = booking.therapist_id == act.therapist && booking.slot() == slot;
                    let answer = if same {
                        Ok((booking, false))
                    } else {
                        Err(CalendarError::KeyReused)
                    };
                    return Box::pin(fut::ready(answer));
                }

                tracing::info!(booking = %booking.id, therapist = %booking.therapist_id, "booked");
                let events = booking_events(&booking, true);
                let publish = act.publish_all(events);
                Box::pin(
                    publish
                        .into_actor(act)
                        .map(move |(), _, _| Ok((booking, true))),
                )
            }))
        })
    }
}

impl CalendarActor {
    fn check_bookable(&self, msg: &Book) -> Result<Slot, CalendarError> {
        if !may(Some(&msg.client), Action::Book(self.therapist)) {
            return Err(CalendarError::Forbidden);
        }
        let now = Utc::now();
        if msg.start < now {
            return Err(CalendarError::InPast);
        }
        if msg.start > now + BOOKING_HORIZON {
            return Err(CalendarError::NotOffered);
        }
        let cache = self
            .cache
            .as_ref()
            .ok_or(CalendarError::TherapistNotFound)?;
        let slot = cache
            .offered_at(msg.start)
            .ok_or(CalendarError::NotOffered)?;

        // A retry of an accepted request must reach the store to be recognised, even though
        // the slot now looks taken in memory.
        let overlaps = cache.bookings.values().any(|taken| taken.overlaps(&slot));
        if overlaps && msg.idempotency_key.is_none() {
            return Err(CalendarError::SlotTaken);
        }
        Ok(slot)
    }
}

impl Handler<Cancel> for CalendarActor {
    type Result = AtomicResponse<Self, Result<Booking, CalendarError>>;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Self::Context) -> Self::Result {
        self.with_cache(move |act| {
            let store = act.store.clone();
            let therapist = act.therapist;
            let cancel = async move {
                let booking = store.find_booking(msg.booking).await?;
                let booking = booking.filter(|b| b.therapist_id == therapist);
                let booking = booking.ok_or(CalendarError::BookingNotFound)?;
                if !may(Some(&msg.by), Action::CancelBooking(&booking)) {
                    return Err(CalendarError::BookingNotFound);
                }
                if booking.start <= Utc::now() {
                    return Err(CalendarError::AlreadyStarted);
                }
                Ok(store.cancel_booking(booking.id, msg.by.user_id).await?)
            };

            Box::pin(cancel.into_actor(act).then(|cancelled, act, _| {
                let booking = match cancelled {
                    Ok(booking) => booking,
                    Err(e) => return Box::pin(fut::ready(Err(e))) as ResponseActFuture<Self, _>,
                };
                if let Some(cache) = act.cache.as_mut() {
                    cache.bookings.remove(&booking.id);
                }
                tracing::info!(booking = %booking.id, therapist = %booking.therapist_id, "cancelled");
                let publish = act.publish_all(booking_events(&booking, false));
                Box::pin(publish.into_actor(act).map(move |(), _, _| Ok(booking)))
            }))
        })
    }
}

impl Handler<SetAvailability> for CalendarActor {
    type Result = AtomicResponse<Self, Result<(), CalendarError>>;

    fn handle(&mut self, msg: SetAvailability, _ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        if !may(Some(&msg.by), Action::ManageTherapist(self.therapist)) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(CalendarError::Forbidden))));
        }
        if let Err(e) = msg.availability.validate() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e.into()))));
        }

        let store = self.store.clone();
        let therapist = self.therapist;
        let save = async move { store.save_availability(therapist, &msg.availability).await };
        AtomicResponse::new(Box::pin(save.into_actor(self).then(
            move |saved, act, _| {
                if let Err(e) = saved {
                    return Box::pin(fut::ready(Err(e.into()))) as ResponseActFuture<Self, _>;
                }
                // Reload on next use rather than patching: session length may also have changed.
                act.cache = None;
                let event = (
                    Topic::Availability(therapist),
                    Event::AvailabilityChanged {
                        therapist_id: therapist,
                    },
                );
                Box::pin(
                    act.publish_all(vec![event])
                        .into_actor(act)
                        .map(|(), _, _| Ok(())),
                )
            },
        )))
    }
}

impl Handler<TopicBatch> for CalendarActor {
    type Result = ();

    /// Follows changes, including other nodes'. Applying our own events again is harmless:
    /// bookings are keyed by id.
    fn handle(&mut self, batch: TopicBatch, _ctx: &mut Self::Context) {
        for msg in batch.0.iter() {
            let Some(cache) = self.cache.as_mut() else {
                return;
            };
            match msg.event.as_ref() {
                Event::BookingCreated { booking } => {
                    cache.bookings.insert(booking.id, booking.slot());
                }
                Event::BookingCancelled { booking } => {
                    cache.bookings.remove(&booking.id);
                }
                Event::AvailabilityChanged { .. } => self.cache = None,
                _ => {}
            }
        }
    }
}

/// The events one booking change causes, on every topic that cares.
fn booking_events(booking: &Booking, created: bool) -> Vec<(Topic, Event)> {
    let therapist = booking.therapist_id;
    let slot = booking.slot();
    let (change, slot_event) = if created {
        (
            Event::BookingCreated {
                booking: booking.clone(),
            },
            Event::SlotTaken {
                therapist_id: therapist,
                slot,
            },
        )
    } else {
        (
            Event::BookingCancelled {
                booking: booking.clone(),
            },
            Event::SlotFreed {
                therapist_id: therapist,
                slot,
            },
        )
    };
    vec![
        (Topic::Calendar(therapist), change.clone()),
        (Topic::User(booking.client_id), change),
        (Topic::Availability(therapist), slot_event),
    ]
}
