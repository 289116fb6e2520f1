//! Paranimo's core: the domain values, the actors that own live state, the websocket wire
//! protocol, the single authorisation policy, and the ports (traits) through which actors
//! persist and publish.
//!
//! Layout:
//! - [`ids`], [`domain`]: typed ids, availability and slot arithmetic, bookings.
//! - [`protocol`]: every websocket frame and event.
//! - [`policy`]: the one answer to "may this user do this to that".
//! - [`ports`]: what the actors need from storage and fan-out; `src/` implements them.
//! - [`calendar`], [`mailbox`], [`room`]: the actors; [`registry`] starts them on demand.
//!
//! This crate knows nothing of PostgreSQL, Redis or HTTP, and compiles and tests without them.

pub mod calendar;
pub mod domain;
pub mod ids;
pub mod mailbox;
pub mod policy;
pub mod ports;
pub mod protocol;
pub mod registry;
pub mod room;
