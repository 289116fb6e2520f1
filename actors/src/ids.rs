//! Typed identifiers. A message field or a map key never holds a bare `Uuid`, so the compiler
//! stops a booking id from being passed where a user id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) identifier.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Any account: client, therapist, staff or admin.
    UserId
);
id_type!(
    /// The account of a therapist; the same value as their `UserId`.
    TherapistId
);
id_type!(
    /// One booked session between a client and a therapist; also names its room and conversation.
    BookingId
);
id_type!(
    /// One stored conversation message, assigned by the server.
    MessageId
);

impl From<TherapistId> for UserId {
    fn from(id: TherapistId) -> Self {
        UserId(id.0)
    }
}
