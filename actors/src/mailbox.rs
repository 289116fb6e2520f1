//! `MailboxActor`: one per user. It stores the messages that user sends and delivers them to
//! every device of both parties.
//!
//! Invariants:
//! - A message is acknowledged only after it is committed; a resend with the same client id
//!   returns the stored message and delivers nothing twice.
//! - Only the booking's two parties may post or read (asked of the policy module).

use crate::domain::Booking;
use crate::ids::{BookingId, UserId};
use crate::policy::{Action, Principal, may};
use crate::ports::{EventBus, MessageStore, NewMessage, PortError};
use crate::protocol::{ChatMessage, Event, MAX_CLIENT_ID_BYTES, MAX_MESSAGE_CHARS, Topic};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A mailbox nobody has used for this long stops.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How often a mailbox checks whether it has been idle too long.
const IDLE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// No such booking, or the sender is not one of its parties (never told apart).
    #[error("conversation not found")]
    NotFound,
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Post a message in a booking's conversation.
#[derive(Message)]
#[rtype(result = "Result<ChatMessage, MailboxError>")]
pub struct Post {
    pub sender: Principal,
    pub booking_id: BookingId,
    pub client_msg_id: String,
    pub body: String,
}

/// One user's outgoing mail. See the module documentation for its invariants.
pub struct MailboxActor {
    user: UserId,
    store: Arc<dyn MessageStore>,
    bus: Arc<dyn EventBus>,
    /// Bookings already checked for this user, so a busy conversation costs one lookup.
    conversations: HashMap<BookingId, Booking>,
    last_active: Instant,
}

impl MailboxActor {
    /// A mailbox for `user`.
    pub fn new(user: UserId, store: Arc<dyn MessageStore>, bus: Arc<dyn EventBus>) -> Self {
        Self {
            user,
            store,
            bus,
            conversations: HashMap::new(),
            last_active: Instant::now(),
        }
    }
}

impl Actor for MailboxActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(IDLE_CHECK_EVERY, |act, ctx| {
            if act.last_active.elapsed() > IDLE_TIMEOUT {
                ctx.stop();
            }
        });
    }
}

/// Checks a message's own fields before anything is looked up.
fn validate(msg: &Post) -> Result<(), MailboxError> {
    if msg.client_msg_id.is_empty() || msg.client_msg_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(MailboxError::Invalid("the frame id must be 1 to 64 bytes"));
    }
    let control = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    if msg.body.chars().any(control) || msg.client_msg_id.chars().any(char::is_control) {
        return Err(MailboxError::Invalid(
            "a message cannot hold control characters",
        ));
    }
    if msg.body.trim().is_empty() {
        return Err(MailboxError::Invalid("a message cannot be empty"));
    }
    if msg.body.chars().count() > MAX_MESSAGE_CHARS {
        return Err(MailboxError::Invalid(
            "a message can be at most 4000 characters",
        ));
    }
    Ok(())
}

impl Handler<Post> for MailboxActor {
    type Result = AtomicResponse<Self, Result<ChatMessage, MailboxError>>;

    fn handle(&mut self, msg: Post, _ctx: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        if let Err(e) = validate(&msg) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        debug_assert_eq!(msg.sender.user_id, self.user);

        let known = self.conversations.get(&msg.booking_id).cloned();
        let store = self.store.clone();
        let bus = self.bus.clone();
        let post = async move {
            // Authorise against the booking itself, not anything the client sent.
            let booking = match known {
                Some(b) => b,
                None => store
                    .find_booking(msg.booking_id)
                    .await?
                    .ok_or(MailboxError::NotFound)?,
            };
            if !may(Some(&msg.sender), Action::PostMessage(&booking)) {
                return Err(MailboxError::NotFound);
            }

            let new = NewMessage {
                booking_id: booking.id,
                sender_id: msg.sender.user_id,
                client_msg_id: msg.client_msg_id,
                body: msg.body,
            };
            let (message, created) = store.insert_message(&new).await?;

            // Deliver to every device of both parties, after commit, once.
            if created {
                let event = Event::MessageCreated {
                    message: message.clone(),
                };
                for party in [booking.client_id, booking.therapist_id.into()] {
                    if let Err(e) = bus.publish(Topic::User(party), event.clone()).await {
                        tracing::error!(booking = %booking.id, error = %e, "message fan-out failed");
                    }
                }
            }
            Ok((booking, message))
        };

        AtomicResponse::new(Box::pin(post.into_actor(self).map(|result, act, _| {
            let (booking, message) = result?;
            act.conversations.insert(booking.id, booking);
            Ok(message)
        })))
    }
}
