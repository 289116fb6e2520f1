//! `RoomActor`: one per booked session (per node). It admits the booking's client and
//! therapist inside the join window, keeps who is present, and relays WebRTC signalling
//! between them. Media never passes through the server.
//!
//! Invariants:
//! - Only the booking's two parties are admitted, and only between `open_before` before the
//!   start and `close_after` after the end.
//! - Signalling is relayed only from a participant who has joined through this node.
//! - Presence lives in the shared store with expiry, so a participant on another node (or on
//!   a node that died) is seen correctly.

use crate::domain::Booking;
use crate::ids::{BookingId, UserId};
use crate::policy::{Action, Principal, may};
use crate::ports::{Attendance, EventBus, PortError, RoomStore};
use crate::protocol::{Event, RoomState, Topic};
use actix::prelude::*;
use chrono::{Duration, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How often the room checks whether it is empty and can stop.
const IDLE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How often presence is renewed for the participants connected through this node; well
/// inside the shared store's expiry, so a live participant never blinks out.
const PRESENCE_REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// When a room opens and closes relative to its booking.
#[derive(Clone, Copy, Debug)]
pub struct RoomWindow {
    /// How long before the start participants may enter.
    pub open_before: Duration,
    /// How long after the booked end the room stays open.
    pub close_after: Duration,
}

impl Default for RoomWindow {
    fn default() -> Self {
        Self {
            open_before: Duration::minutes(10),
            close_after: Duration::minutes(15),
        }
    }
}

/// Why a room command was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// No such booking, or the caller is not one of its parties.
    #[error("room not found")]
    NotFound,
    /// Outside the join window, or the booking was cancelled.
    #[error("the room is not open now")]
    Closed,
    /// Signalling from someone who has not joined.
    #[error("join the room first")]
    NotJoined,
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Enter the room.
#[derive(Message)]
#[rtype(result = "Result<RoomState, RoomError>")]
pub struct Join {
    pub who: Principal,
}

/// Ask whether `who` may enter now, without entering: the connection asks this before it
/// follows the room's topic, so nobody else ever receives a room's signalling.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct Admit {
    pub who: Principal,
}

/// Leave the room (also sent when a connection closes while inside).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub who: UserId,
}

/// Relay signalling to the other participant.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct Signal {
    pub from: UserId,
    pub payload: serde_json::Value,
}

/// One session room. See the module documentation for its invariants.
pub struct RoomActor {
    booking_id: BookingId,
    store: Arc<dyn RoomStore>,
    bus: Arc<dyn EventBus>,
    window: RoomWindow,
    booking: Option<Booking>,
    /// Connections inside the room through this node, per user (a user may use two tabs).
    joined_here: HashMap<UserId, usize>,
}

impl RoomActor {
    /// A room for `booking_id`; the booking is loaded on the first join.
    pub fn new(
        booking_id: BookingId,
        store: Arc<dyn RoomStore>,
        bus: Arc<dyn EventBus>,
        window: RoomWindow,
    ) -> Self {
        Self {
            booking_id,
            store,
            bus,
            window,
            booking: None,
            joined_here: HashMap::new(),
        }
    }

    fn state(&self, booking: &Booking, present: Vec<UserId>) -> RoomState {
        RoomState {
            booking_id: booking.id,
            present,
            offerer: booking.therapist_id.into(),
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(IDLE_CHECK_EVERY, |act, ctx| {
            if act.joined_here.is_empty() {
                ctx.stop();
            }
        });

        ctx.run_interval(PRESENCE_REFRESH_EVERY, |act, ctx| {
            let store = act.store.clone();
            let room = act.booking_id;
            let here: Vec<UserId> = act.joined_here.keys().copied().collect();
            ctx.spawn(
                async move {
                    for user in here {
                        if let Err(e) = store.enter_presence(room, user).await {
                            tracing::warn!(%room, error = %e, "presence refresh failed");
                        }
                    }
                }
                .into_actor(act),
            );
        });
    }
}

impl Handler<Join> for RoomActor {
    type Result = AtomicResponse<Self, Result<RoomState, RoomError>>;

    fn handle(&mut self, msg: Join, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let bus = self.bus.clone();
        let cached = self.booking.clone();
        let booking_id = self.booking_id;
        let window = self.window;

        let join = async move {
            let booking = admitted(store.as_ref(), cached, booking_id, &msg.who, window).await?;
            let present = store.enter_presence(booking.id, msg.who.user_id).await?;
            store
                .record_attendance(booking.id, msg.who.user_id, Attendance::Joined)
                .await?;
            Ok((booking, present))
        };

        AtomicResponse::new(Box::pin(join.into_actor(self).then(
            move |joined, act, _| {
                let (booking, present) = match joined {
                    Ok(j) => j,
                    Err(e) => return Box::pin(fut::ready(Err(e))) as ResponseActFuture<Self, _>,
                };
                *act.joined_here.entry(msg.who.user_id).or_default() += 1;
                let state = act.state(&booking, present);
                act.booking = Some(booking);
                tracing::info!(room = %act.booking_id, role = msg.who.role.as_str(), "joined room");

                let event = Event::RoomPresence {
                    room: state.clone(),
                };
                let topic = Topic::Room(act.booking_id);
                let publish = async move { bus.publish(topic, event).await };
                Box::pin(publish.into_actor(act).map(move |published, _, _| {
                    published?;
                    Ok(state)
                }))
            },
        )))
    }
}

/// The booking, if `who` may be in its room now: one of its two parties, the booking
/// confirmed, and the time inside the window. `NotFound` for everyone else, so a refusal
/// never reveals that the booking exists.
async fn admitted(
    store: &dyn RoomStore,
    cached: Option<Booking>,
    booking_id: BookingId,
    who: &Principal,
    window: RoomWindow,
) -> Result<Booking, RoomError> {
    let booking = match cached {
        Some(b) => b,
        None => store
            .find_booking(booking_id)
            .await?
            .ok_or(RoomError::NotFound)?,
    };
    if !may(Some(who), Action::JoinRoom(&booking)) {
        return Err(RoomError::NotFound);
    }
    let now = Utc::now();
    let open = booking.start - window.open_before;
    let close = booking.end + window.close_after;
    let confirmed = booking.status == crate::domain::BookingStatus::Confirmed;
    if !confirmed || now < open || now > close {
        return Err(RoomError::Closed);
    }
    Ok(booking)
}

impl Handler<Admit> for RoomActor {
    type Result = ResponseFuture<Result<(), RoomError>>;

    fn handle(&mut self, msg: Admit, _ctx: &mut Self::Context) -> Self::Result {
        let (store, cached) = (self.store.clone(), self.booking.clone());
        let (booking_id, window) = (self.booking_id, self.window);
        Box::pin(async move {
            admitted(store.as_ref(), cached, booking_id, &msg.who, window)
                .await
                .map(|_| ())
        })
    }
}

impl Handler<Leave> for RoomActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Leave, _ctx: &mut Self::Context) -> Self::Result {
        let still_here = match self.joined_here.get_mut(&msg.who) {
            None => return AtomicResponse::new(Box::pin(fut::ready(()))),
            Some(count) => {
                *count -= 1;
                *count > 0
            }
        };
        if still_here {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        self.joined_here.remove(&msg.who);

        let store = self.store.clone();
        let bus = self.bus.clone();
        let booking_id = self.booking_id;
        let offerer = self.booking.as_ref().map(|b| UserId::from(b.therapist_id));
        let leave = async move {
            let present = store.leave_presence(booking_id, msg.who).await?;
            store
                .record_attendance(booking_id, msg.who, Attendance::Left)
                .await?;
            if let Some(offerer) = offerer {
                let room = RoomState {
                    booking_id,
                    present,
                    offerer,
                };
                bus.publish(Topic::Room(booking_id), Event::RoomPresence { room })
                    .await?;
            }
            Ok::<_, PortError>(())
        };
        AtomicResponse::new(Box::pin(leave.into_actor(self).map(move |left, _, _| {
            if let Err(e) = left {
                tracing::error!(room = %booking_id, error = %e, "recording a room leave failed");
            }
        })))
    }
}

impl Handler<Signal> for RoomActor {
    type Result = ResponseFuture<Result<(), RoomError>>;

    fn handle(&mut self, msg: Signal, _ctx: &mut Self::Context) -> Self::Result {
        if !self.joined_here.contains_key(&msg.from) {
            return Box::pin(async { Err(RoomError::NotJoined) });
        }
        if !is_signal_payload(&msg.payload) {
            return Box::pin(async {
                Err(RoomError::Invalid(
                    "payload needs a description or a candidate",
                ))
            });
        }
        let bus = self.bus.clone();
        let booking_id = self.booking_id;
        let event = Event::RoomSignal {
            booking_id,
            from: msg.from,
            payload: msg.payload,
        };
        Box::pin(async move {
            bus.publish(Topic::Room(booking_id), event).await?;
            Ok(())
        })
    }
}

/// A signalling payload is an object carrying a session description or an ICE candidate
/// (`candidate: null` marks the end of candidates).
fn is_signal_payload(payload: &serde_json::Value) -> bool {
    let Some(object) = payload.as_object() else {
        return false;
    };
    let description = object.get("description").is_some_and(|d| d.is_object());
    let candidate = object
        .get("candidate")
        .is_some_and(|c| c.is_object() || c.is_null());
    description || candidate
}
