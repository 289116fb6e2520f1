use crate::helpers::{Client, Reply, TestApp};
use paranimo::admin::OperatorRole;
use serde_json::json;

/// Every protected booking resource and action, for every kind of caller, over the real
/// HTTP and websocket API: only the booking's two parties get in, everyone else is told the
/// booking does not exist, and only the therapist edits their own calendar.
#[actix_web::test]
async fn the_booking_access_matrix() {
    let app = TestApp::spawn_with(|s| s.room_opens_minutes_before = 100_000).await;
    let (therapist, client, booking) = app.booked_pair(-1).await;
    let other_client = app.new_client().await;
    let other_therapist = app.new_therapist().await;
    let staff = app.operator(OperatorRole::Staff).await;
    let admin = app.operator(OperatorRole::Admin).await;
    let anonymous = app.client();

    // Expected for: read booking, read conversation, post a message, join the room,
    // edit the therapist's availability.
    let matrix: [(&str, &Client, [u16; 5]); 7] = [
        ("anonymous", &anonymous, [401, 401, 401, 401, 401]),
        ("the client", &client, [200, 200, 200, 200, 403]),
        ("the therapist", &therapist, [200, 200, 200, 200, 200]),
        ("another client", &other_client, [404, 404, 404, 404, 403]),
        (
            "another therapist",
            &other_therapist,
            [404, 404, 404, 404, 200],
        ),
        ("staff", &staff, [404, 404, 404, 404, 403]),
        ("admin", &admin, [404, 404, 404, 404, 403]),
    ];
    for (who, caller, expected) in matrix {
        let read = caller.get(&format!("/api/bookings/{booking}")).await;
        let conversation = caller
            .get(&format!("/api/bookings/{booking}/messages"))
            .await;
        let (post, join) = websocket_actions(caller, &booking).await;
        let edit = caller
            .put_json(
                "/api/therapists/me/availability",
                &crate::helpers::all_week(),
            )
            .await;
        let actual = [
            status(&read),
            status(&conversation),
            post,
            join,
            status(&edit),
        ];
        assert_eq!(
            actual, expected,
            "{who}: read, conversation, post, join, edit"
        );
    }

    // Cancelling last, as it changes the booking: strangers first, then a party.
    let cancel = format!("/api/bookings/{booking}/cancel");
    for stranger in [&other_client, &other_therapist, &staff, &admin] {
        stranger
            .post_json(&cancel, &json!({}))
            .await
            .expect_error(404, "not_found");
    }
    anonymous
        .post_json(&cancel, &json!({}))
        .await
        .expect_error(401, "unauthenticated");
    client
        .post_json(&cancel, &json!({}))
        .await
        .expect_status(200);
}

fn status(reply: &Reply) -> u16 {
    reply.status.as_u16()
}

/// Posting a message and joining the room over a websocket, as HTTP-like statuses: 200 for
/// an ack, 404 for `not_found`, 401 when no socket can be opened at all.
async fn websocket_actions(caller: &Client, booking: &str) -> (u16, u16) {
    if caller.cookie.is_none() {
        return (401, 401);
    }
    let mut ws = caller.websocket().await;
    let post = ws
        .command(json!({ "type": "message.send", "booking_id": booking, "body": "hi" }))
        .await;
    let join = ws
        .command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    (as_status(&post), as_status(&join))
}

fn as_status(answer: &serde_json::Value) -> u16 {
    match (answer["type"].as_str(), answer["code"].as_str()) {
        (Some("ack"), _) => 200,
        (_, Some("not_found")) => 404,
        _ => 500,
    }
}
