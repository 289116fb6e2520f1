//! Integration tests: the real server against real PostgreSQL and Redis, through real HTTP
//! and websockets. One binary, so the slow link step happens once.

mod accounts;
mod audit;
mod bad_input;
mod booking;
mod client_profiles;
mod email;
mod fanout;
mod helpers;
mod identity;
mod matrix;
mod messaging;
mod mfa;
mod operations;
mod regressions;
mod rooms;
mod secrets_in_logs;
mod two_nodes;
