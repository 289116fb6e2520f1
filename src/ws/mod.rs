//! The websocket gateway at `/ws`: checks the origin and the session before upgrading, then
//! hands the socket to its own [`connection::ConnectionActor`].

pub mod connection;

use crate::auth::SESSION_COOKIE;
use crate::http::error::ApiError;
use crate::http::origin_allowed;
use crate::state::AppState;
use crate::store::sessions;
use actix::Actor;
use actix_web::{HttpRequest, HttpResponse, web};
use connection::{ConnectionActor, ServerClose};
use paranimo_actors::protocol::MAX_FRAME_BYTES;

/// Most websockets one session may hold open on one node.
pub const MAX_SOCKETS_PER_SESSION: usize = 16;

/// Registers the websocket route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// Upgrades an authenticated same-origin request to a websocket. A foreign origin (403) or a
/// missing session (401) is refused before the upgrade, so no socket is ever opened for them.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &state.settings.public_origin) {
        tracing::warn!("websocket upgrade from a foreign origin refused");
        return Err(ApiError::CrossOrigin.into());
    }
    let token = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let user = match token.is_empty() {
        true => None,
        false => sessions::user_for_token(&state.pool, &token)
            .await
            .map_err(ApiError::from)?,
    };
    let user = user.ok_or(ApiError::Unauthenticated)?;

    // One person has a few tabs and devices, never dozens of sockets on one session.
    let token_hash = sessions::token_hash(&token);
    let open_here = {
        let open = state.connections.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&token_hash)
            .map(|list| list.iter().filter(|a| a.connected()).count())
    };
    if open_here.unwrap_or(0) >= MAX_SOCKETS_PER_SESSION {
        return Err(ApiError::RateLimited {
            retry_after_seconds: 5,
        }
        .into());
    }

    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);

    let app = state.clone();
    let addr = ConnectionActor::create(|ctx| {
        ConnectionActor::new(ctx, app, &user, token_hash.clone(), session, stream)
    });
    let mut open = state.connections.lock().unwrap_or_else(|e| e.into_inner());
    open.entry(token_hash).or_default().push(addr);
    Ok(response)
}

/// Closes every open websocket of a session on this node. Called on every node, through
/// the event bus, whenever a session is revoked anywhere.
pub fn close_session_sockets(state: &AppState, hash: &[u8], reason: &'static str) {
    let sockets = {
        let mut open = state.connections.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(hash).unwrap_or_default()
    };
    for socket in sockets {
        socket.do_send(ServerClose { reason });
    }
}
