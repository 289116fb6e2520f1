use crate::helpers::TestApp;

/// The probes answer, and the OpenAPI document describes every API route.
#[actix_web::test]
async fn probes_and_the_api_description() {
    let app = TestApp::spawn().await;
    let anonymous = app.client();
    anonymous.get("/healthz").await.expect_status(200);
    let ready = anonymous.get("/readyz").await.expect_status(200);
    assert_eq!(ready["postgres"], true);
    assert_eq!(ready["redis"], true);

    let doc = anonymous.get("/api/openapi.json").await.expect_status(200);
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/me",
        "/api/therapists",
        "/api/therapists/{id}",
        "/api/therapists/{id}/slots",
        "/api/therapists/me/profile",
        "/api/therapists/me/availability",
        "/api/bookings",
        "/api/bookings/{id}",
        "/api/bookings/{id}/cancel",
        "/api/bookings/{id}/messages",
        "/api/rtc/ice-servers",
    ] {
        assert!(paths.contains_key(path), "openapi.json lacks {path}");
    }
    anonymous
        .get("/api/no-such-thing")
        .await
        .expect_error(404, "not_found");
}

/// TURN credentials are handed out only to signed-in users, in the shared-secret scheme.
#[actix_web::test]
async fn ice_servers_include_short_lived_turn_credentials() {
    let app = TestApp::spawn_with(|s| {
        s.stun_urls = vec!["stun:127.0.0.1:3478".into()];
        s.turn_urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        s.turn_secret = Some("north".into());
    })
    .await;
    app.client()
        .get("/api/rtc/ice-servers")
        .await
        .expect_error(401, "unauthenticated");
    let client = app.new_client().await;
    let body = client.get("/api/rtc/ice-servers").await.expect_status(200);
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let username = servers[1]["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, client.id());
    let expiry: i64 = expiry.parse().unwrap();
    assert!(expiry > chrono::Utc::now().timestamp());
    assert!(!servers[1]["credential"].as_str().unwrap().is_empty());
}
