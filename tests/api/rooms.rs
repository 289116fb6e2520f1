use crate::helpers::TestApp;
use serde_json::json;

/// Both parties enter the room, see each other's presence, and signalling is relayed from
/// one to the other; leaving is seen by the one who stays.
#[actix_web::test]
async fn the_two_parties_meet_and_signalling_is_relayed() {
    // Open rooms long before the start, so a booking days away can be joined now.
    let app = TestApp::spawn_with(|s| s.room_opens_minutes_before = 100_000).await;
    let (therapist, client, booking) = app.booked_pair(-1).await;
    let mut t = therapist.websocket().await;
    let mut c = client.websocket().await;

    let joined = t
        .command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    assert_eq!(joined["type"], "ack", "{joined}");
    assert_eq!(joined["room"]["offerer"], therapist.id().as_str());
    let joined = c
        .command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    assert_eq!(joined["room"]["present"].as_array().unwrap().len(), 2);
    let presence = t
        .expect("both present", |f| {
            f["event"]["kind"] == "room.presence"
                && f["event"]["room"]["present"]
                    .as_array()
                    .is_some_and(|p| p.len() == 2)
        })
        .await;
    assert_eq!(presence["topic"], format!("room:{booking}"));

    let offer = json!({ "description": { "type": "offer", "sdp": "v=0 (test)" } });
    let sent = t
        .command(json!({ "type": "room.signal", "booking_id": booking, "payload": offer }))
        .await;
    assert_eq!(sent["type"], "ack");
    let relayed = c
        .expect("offer", |f| {
            f["event"]["kind"] == "room.signal" && f["event"]["from"] == therapist.id().as_str()
        })
        .await;
    assert_eq!(relayed["event"]["payload"], offer);

    let bogus = c
        .command(json!({ "type": "room.signal", "booking_id": booking, "payload": { "x": 1 } }))
        .await;
    assert_eq!(bogus["code"], "invalid");

    c.command(json!({ "type": "room.leave", "booking_id": booking }))
        .await;
    t.expect("client left", |f| {
        f["event"]["kind"] == "room.presence"
            && f["event"]["room"]["present"] == json!([therapist.id()])
    })
    .await;

    let attendance: i64 = sqlx::query_scalar("SELECT count(*) FROM room_attendance")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attendance, 3, "two joins and one leave recorded");
}

/// Nobody but the booking's two parties may enter, and nobody may enter outside the window.
#[actix_web::test]
async fn strangers_and_early_arrivals_are_kept_out() {
    let app = TestApp::spawn().await; // rooms open 10 minutes before the start
    let (_therapist, client, booking) = app.booked_pair(-1).await;
    let stranger = app.new_client().await;

    let mut s = stranger.websocket().await;
    let refused = s
        .command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    assert_eq!(refused["code"], "not_found");
    let signal = s.command(json!({ "type": "room.signal", "booking_id": booking, "payload": { "candidate": null } })).await;
    assert_eq!(signal["code"], "not_found");

    let mut c = client.websocket().await;
    let early = c
        .command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    assert_eq!(early["code"], "room_closed");
}
