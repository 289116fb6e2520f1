//! Paranimo's load generator. It will speak only the public HTTP and websocket protocol
//! (the wire types come from `paranimo-actors`) and run named, bounded scenarios against
//! loopback addresses.
//!
//! Not written yet: the scenarios (idle, fanout, booking, chat, signalling, reconnect, slow)
//! are the load-testing work that follows the walking skeleton.

use paranimo_actors::protocol::PROTOCOL_VERSION;

fn main() {
    eprintln!(
        "paranimo-loadtest: no scenarios yet (protocol v{PROTOCOL_VERSION}); \
         they arrive with the load-testing work"
    );
    std::process::exit(2);
}
