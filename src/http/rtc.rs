//! ICE servers for the browser's peer connection: STUN, and TURN with short-lived
//! credentials in the shared-secret ("TURN REST") scheme that coturn implements.

use crate::auth::CurrentUser;
use crate::state::AppState;
use actix_web::web;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha1::Sha1;
use utoipa::ToSchema;

/// How long TURN credentials stay valid: longer than any session, short enough that a leaked
/// one is soon useless.
const TURN_CREDENTIAL_LIFETIME_SECONDS: i64 = 4 * 60 * 60;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/rtc/ice-servers", web::get().to(ice_servers));
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The ICE servers a browser should use.
#[derive(Serialize, ToSchema)]
pub struct IceServers {
    pub ice_servers: Vec<IceServer>,
}

/// TURN credentials for `user_id` that expire at `expires_at` (Unix seconds): the username is
/// `<expiry>:<user id>` and the password base64(HMAC-SHA1(secret, username)).
pub fn turn_credentials(secret: &[u8], user_id: &str, expires_at: i64) -> (String, String) {
    let username = format!("{expires_at}:{user_id}");
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// ICE servers for the signed-in user.
#[utoipa::path(get, path = "/api/rtc/ice-servers", responses((status = 200, body = IceServers)))]
pub async fn ice_servers(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> web::Json<IceServers> {
    let settings = &state.settings;
    let mut servers = Vec::new();
    if !settings.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: settings.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let (Some(secret), false) = (&settings.turn_secret, settings.turn_urls.is_empty()) {
        let expires_at = chrono::Utc::now().timestamp() + TURN_CREDENTIAL_LIFETIME_SECONDS;
        let (username, credential) = turn_credentials(
            secret.expose_secret().as_bytes(),
            &current.user.id.to_string(),
            expires_at,
        );
        servers.push(IceServer {
            urls: settings.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    web::Json(IceServers {
        ice_servers: servers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against an independent computation of the same scheme:
    /// `printf '1700000000:alice' | openssl dgst -sha1 -hmac north -binary | base64`.
    #[test]
    fn turn_credentials_follow_the_shared_secret_scheme() {
        let (username, credential) = turn_credentials(b"north", "alice", 1_700_000_000);
        assert_eq!(username, "1700000000:alice");
        assert_eq!(credential, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    }
}
