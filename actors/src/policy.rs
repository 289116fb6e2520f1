//! The one place that answers "may this user do this to that". HTTP handlers, the websocket
//! gateway and the actors ask [`may`] and nothing else, so the rules can be read, and tested
//! as a matrix, in one file.

use crate::domain::{Booking, Role};
use crate::ids::{TherapistId, UserId};
use crate::protocol::Topic;

/// A signed-in user, as the policy sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
}

/// Something a user wants to do, carrying the facts the decision needs.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// See a booking's details.
    ReadBooking(&'a Booking),
    /// Cancel a booking.
    CancelBooking(&'a Booking),
    /// Read a booking's conversation.
    ReadConversation(&'a Booking),
    /// Post in a booking's conversation.
    PostMessage(&'a Booking),
    /// Enter a booking's video room and exchange signalling in it.
    JoinRoom(&'a Booking),
    /// Book a session with this therapist.
    Book(TherapistId),
    /// Edit this therapist's profile and weekly availability.
    ManageTherapist(TherapistId),
    /// Follow a realtime topic.
    Subscribe(Topic),
    /// Read a client's private profile. `consent` is whether the caller holds this client's
    /// active consent; the caller looks it up, since the policy holds no data.
    ReadClientProfile { client: UserId, consent: bool },
    /// Write this client's private profile.
    EditClientProfile(UserId),
    /// Grant or revoke this client's consents to therapists.
    ManageConsent(UserId),
}

/// Whether the action is allowed. Callers answer "not found" rather than "forbidden" for other
/// people's bookings, so a refusal never reveals that something exists.
pub fn may(who: Option<&Principal>, action: Action<'_>) -> bool {
    let Some(who) = who else {
        // Anonymous visitors may only read public pages, which need no decision here.
        return false;
    };

    match action {
        Action::ReadBooking(b)
        | Action::CancelBooking(b)
        | Action::ReadConversation(b)
        | Action::PostMessage(b)
        | Action::JoinRoom(b) => is_party(who, b),
        Action::Book(therapist) => {
            who.role == Role::Client && UserId::from(therapist) != who.user_id
        }
        Action::ManageTherapist(therapist) => {
            who.role == Role::Therapist && UserId::from(therapist) == who.user_id
        }
        Action::Subscribe(topic) => may_subscribe(who, topic),
        Action::ReadClientProfile { client, consent } => match who.role {
            Role::Client => who.user_id == client,
            Role::Therapist => consent && who.user_id != client,
            // Staff will read only through a recorded "break glass" action, not built yet.
            Role::Staff | Role::Admin => false,
        },
        Action::EditClientProfile(client) | Action::ManageConsent(client) => {
            who.role == Role::Client && who.user_id == client
        }
    }
}

/// Only the booking's own client and therapist: staff watch room health through counters,
/// never through the room or the conversation.
fn is_party(who: &Principal, booking: &Booking) -> bool {
    match who.role {
        Role::Client => who.user_id == booking.client_id,
        Role::Therapist => who.user_id == UserId::from(booking.therapist_id),
        Role::Staff | Role::Admin => false,
    }
}

fn may_subscribe(who: &Principal, topic: Topic) -> bool {
    match topic {
        Topic::Availability(_) => true,
        Topic::Calendar(therapist) => {
            who.role == Role::Therapist && UserId::from(therapist) == who.user_id
        }
        Topic::User(user) => user == who.user_id,
        // A room is entered with `room.join`, which checks the booking; a bare subscribe
        // would skip that check, so it is never allowed.
        Topic::Room(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BookingStatus;
    use crate::ids::BookingId;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new_random(),
            role,
        }
    }

    fn booking_between(client: &Principal, therapist: &Principal) -> Booking {
        let now = chrono::Utc::now();
        Booking {
            id: BookingId::new_random(),
            therapist_id: TherapistId(therapist.user_id.0),
            client_id: client.user_id,
            start: now,
            end: now,
            status: BookingStatus::Confirmed,
            therapist_name: String::new(),
            client_name: String::new(),
        }
    }

    /// Every booking action, for every kind of caller: only the two parties are allowed.
    #[test]
    fn booking_actions_belong_to_the_two_parties_only() {
        let client = principal(Role::Client);
        let therapist = principal(Role::Therapist);
        let booking = booking_between(&client, &therapist);
        let callers = [
            (None, false),
            (Some(client), true),
            (Some(therapist), true),
            (Some(principal(Role::Client)), false),
            (Some(principal(Role::Therapist)), false),
            (Some(principal(Role::Staff)), false),
            (Some(principal(Role::Admin)), false),
        ];
        let actions = [
            Action::ReadBooking(&booking),
            Action::CancelBooking(&booking),
            Action::ReadConversation(&booking),
            Action::PostMessage(&booking),
            Action::JoinRoom(&booking),
        ];
        for (who, expected) in callers {
            for action in actions {
                assert_eq!(may(who.as_ref(), action), expected, "{who:?} {action:?}");
            }
        }
    }

    /// Only clients book, and only a therapist edits their own calendar.
    #[test]
    fn booking_and_managing_a_calendar() {
        let client = principal(Role::Client);
        let therapist = principal(Role::Therapist);
        let theirs = TherapistId(therapist.user_id.0);
        assert!(may(Some(&client), Action::Book(theirs)));
        assert!(!may(Some(&therapist), Action::Book(theirs)));
        assert!(!may(None, Action::Book(theirs)));
        assert!(may(Some(&therapist), Action::ManageTherapist(theirs)));
        assert!(!may(
            Some(&principal(Role::Therapist)),
            Action::ManageTherapist(theirs)
        ));
        assert!(!may(Some(&client), Action::ManageTherapist(theirs)));
        assert!(!may(
            Some(&principal(Role::Admin)),
            Action::ManageTherapist(theirs)
        ));
    }

    /// Topics: public availability for anyone signed in, private ones for their owner.
    #[test]
    fn topic_subscriptions() {
        let client = principal(Role::Client);
        let therapist = principal(Role::Therapist);
        let theirs = TherapistId(therapist.user_id.0);
        let sub = |who: &Principal, t| may(Some(who), Action::Subscribe(t));
        assert!(sub(&client, Topic::Availability(theirs)));
        assert!(!may(None, Action::Subscribe(Topic::Availability(theirs))));
        assert!(sub(&therapist, Topic::Calendar(theirs)));
        assert!(!sub(&client, Topic::Calendar(theirs)));
        assert!(sub(&client, Topic::User(client.user_id)));
        assert!(!sub(&client, Topic::User(therapist.user_id)));
        assert!(!sub(&therapist, Topic::Room(BookingId::new_random())));
    }

    /// A client's private profile, for every kind of caller with and without consent: the
    /// client reads and edits it and manages consent; a therapist only reads, and only with
    /// consent; another client, staff, admin and anonymous visitors never.
    #[test]
    fn client_profile_actions() {
        let client = principal(Role::Client);
        let owner = client.user_id;
        let therapist = principal(Role::Therapist);
        let (stranger, colleague) = (principal(Role::Client), principal(Role::Therapist));
        let (staff, admin) = (principal(Role::Staff), principal(Role::Admin));
        // (caller, may read without consent, may read with consent, may edit and manage).
        // Consent is always the caller's own, so any therapist who holds it may read.
        let callers = [
            ("anonymous", None, false, false, false),
            ("the client", Some(client), true, true, true),
            ("another client", Some(stranger), false, false, false),
            ("a therapist", Some(therapist), false, true, false),
            ("another therapist", Some(colleague), false, true, false),
            ("staff", Some(staff), false, false, false),
            ("admin", Some(admin), false, false, false),
        ];
        for (name, who, without, with, manage) in callers {
            let who = who.as_ref();
            let read = |consent| Action::ReadClientProfile {
                client: owner,
                consent,
            };
            assert_eq!(may(who, read(false)), without, "{name} reads, no consent");
            assert_eq!(may(who, read(true)), with, "{name} reads with consent");
            let edit = Action::EditClientProfile(owner);
            assert_eq!(may(who, edit), manage, "{name} edits");
            let consents = Action::ManageConsent(owner);
            assert_eq!(may(who, consents), manage, "{name} manages consent");
        }

        // A therapist's own id is never a client's profile, and they manage no consents.
        let mine = therapist.user_id;
        let own = Action::ReadClientProfile {
            client: mine,
            consent: true,
        };
        assert!(!may(Some(&therapist), own));
        assert!(!may(Some(&therapist), Action::EditClientProfile(mine)));
        assert!(!may(Some(&therapist), Action::ManageConsent(mine)));
    }
}
