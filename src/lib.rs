//! The Paranimo server: configuration, the HTTP API, the websocket gateway, and the
//! PostgreSQL and Redis adapters behind the actors of `paranimo-actors`.
//!
//! Layout:
//! - [`config`]: typed settings from the environment.
//! - [`startup`]: builds the application; `main` and the tests share it.
//! - [`http`]: one module per resource, the error type, the guards.
//! - [`ws`]: the websocket gateway and the per-connection actor.
//! - [`store`]: SQL, one module per aggregate; [`bus`]: Redis fan-out and presence;
//!   [`adapters`]: both bound to the actors' ports.
//! - [`auth`]: passwords, session tokens, the signed-in-user extractor.
//! - [`demo`]: demo data for local runs.
//! - [`email`]: transactional mail through an outbox table and its sender.
//! - [`mfa`]: second factors (TOTP and recovery codes); [`admin`]: operator commands.
//! - [`crypto`]: field-by-field encryption of client data under per-user data keys.

pub mod adapters;
pub mod admin;
pub mod auth;
pub mod bus;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod email;
pub mod http;
pub mod mfa;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod ws;
