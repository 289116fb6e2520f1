use crate::helpers::{TestApp, Ws};
use chrono::{Duration, Utc};
use serde_json::json;

async fn booking_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Malformed JSON, unknown fields, impossible times and slots outside availability are each
/// refused with a clear error, and none of them changes anything.
#[actix_web::test]
async fn bad_http_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;

    let malformed = client
        .http
        .post(format!("{}/api/bookings", client.base))
        .header("content-type", "application/json")
        .body("{\"therapist_id\": ");
    client
        .send(malformed)
        .await
        .expect_error(400, "bad_request");
    let unknown_field =
        json!({ "therapist_id": therapist.id(), "start": slots[0]["start"], "price": 0 });
    client
        .post_json("/api/bookings", &unknown_field)
        .await
        .expect_error(400, "bad_request");

    // Ten minutes into a slot is not a slot.
    let start: chrono::DateTime<Utc> = serde_json::from_value(slots[0]["start"].clone()).unwrap();
    let off_grid = json!(start + Duration::minutes(10));
    client
        .book(&therapist.id(), &off_grid)
        .await
        .expect_error(422, "slot_unavailable");
    let past = json!(Utc::now() - Duration::days(1));
    client
        .book(&therapist.id(), &past)
        .await
        .expect_error(422, "in_past");
    let far = json!(Utc::now() + Duration::days(400));
    client
        .book(&therapist.id(), &far)
        .await
        .expect_error(422, "slot_unavailable");
    let nobody = uuid::Uuid::new_v4().to_string();
    client
        .book(&nobody, &slots[0]["start"])
        .await
        .expect_error(404, "not_found");

    let bad_rules = json!({ "timezone": "Europe/London", "rules": [{ "weekday": 1, "start": "17:00", "end": "09:00" }] });
    therapist
        .put_json("/api/therapists/me/availability", &bad_rules)
        .await
        .expect_error(422, "validation");
    let bad_zone = json!({ "timezone": "Mars/Base", "rules": [] });
    therapist
        .put_json("/api/therapists/me/availability", &bad_zone)
        .await
        .expect_error(422, "validation");
    let bad_time = json!({ "timezone": "Europe/London", "rules": [{ "weekday": 1, "start": "25:00", "end": "26:00" }] });
    therapist
        .put_json("/api/therapists/me/availability", &bad_time)
        .await
        .expect_error(400, "bad_request");
    client
        .put_json(
            "/api/therapists/me/availability",
            &crate::helpers::all_week(),
        )
        .await
        .expect_error(403, "forbidden");

    assert_eq!(booking_count(&app).await, 0);
    let (still, _) = client.slots(&therapist.id()).await;
    assert_eq!(still, slots, "availability unchanged by refused edits");
}

/// Writes from another origin are refused before they reach any handler.
#[actix_web::test]
async fn cross_origin_writes_are_refused() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;

    let body = json!({ "therapist_id": therapist.id(), "start": slots[0]["start"] });
    let forged = reqwest::Client::new()
        .post(format!("{}/api/bookings", app.address))
        .header("Origin", "https://evil.example")
        .header("Cookie", client.cookie.clone().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let no_origin = reqwest::Client::new()
        .post(format!("{}/api/bookings", app.address))
        .header("Cookie", client.cookie.clone().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    assert_eq!(booking_count(&app).await, 0);
}

/// The websocket refuses foreign origins and missing sessions before upgrading; unknown
/// frames get an error and the connection carries on; oversized frames close it.
#[actix_web::test]
async fn bad_websocket_input_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let cookie = client.cookie.clone();

    assert_eq!(
        Ws::connect(
            &app.address,
            cookie.as_deref(),
            Some("https://evil.example")
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(
        Ws::connect(&app.address, None, Some(&app.address))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        Ws::connect(
            &app.address,
            Some("paranimo_session=forged"),
            Some(&app.address)
        )
        .await
        .err(),
        Some(401)
    );

    let mut ws = client.websocket().await;
    ws.send_raw("{not json".into()).await;
    assert_eq!(ws.next().await["code"], "bad_frame");
    ws.send(json!({ "type": "teleport", "to": "mars" })).await;
    assert_eq!(ws.next().await["code"], "bad_frame");
    ws.send(json!({ "type": "subscribe", "topic": "nonsense" }))
        .await;
    assert_eq!(ws.next().await["code"], "bad_frame");
    ws.send(json!({ "type": "message.send", "id": "x".repeat(65), "booking_id": uuid::Uuid::new_v4(), "body": "hi" })).await;
    assert_eq!(ws.next().await["code"], "invalid");

    ws.send(json!({ "type": "ping", "id": "still-here" })).await;
    assert_eq!(
        ws.next().await,
        json!({ "type": "pong", "id": "still-here" })
    );

    ws.send_raw(format!(
        "{{\"type\":\"ping\",\"id\":\"{}\"}}",
        "x".repeat(70 * 1024)
    ))
    .await;
    let refused = ws.next().await;
    assert_eq!(refused["code"], "frame_too_large");
    let closing = ws.expect("close", |f| f["type"] == "socket_closed").await;
    assert_eq!(closing["code"], 1009);
}
