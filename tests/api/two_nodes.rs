use crate::helpers::{Client, TestDatabase, all_week, redis_url, sample_profile};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Both nodes sit behind one public origin, as behind a load balancer.
const ORIGIN: &str = "http://paranimo.test";

/// A server process, killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_node(database_url: &str, prefix: &str) -> Node {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_paranimo"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url())
        .env("REDIS_PREFIX", prefix)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("PUBLIC_ORIGIN", ORIGIN)
        .env("ROOM_OPENS_MINUTES_BEFORE", "100000")
        .env("HTTP_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server binary starts");
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = reqwest::get(format!("{}/readyz", node.base)).await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return node;
        }
        assert!(
            Instant::now() < deadline,
            "node on port {port} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client_on(node: &Node, database: &TestDatabase) -> Client {
    let mut c = Client::new(&node.base);
    c.origin = ORIGIN.to_owned();
    c.mail = Some(sqlx::PgPool::connect_lazy(&database.url).expect("database url"));
    c
}

/// Two server processes on two ports share PostgreSQL and Redis: a client on one and a
/// therapist on the other book, message and complete room signalling.
#[actix_web::test]
async fn a_client_and_a_therapist_on_different_nodes_book_message_and_signal() {
    let database = TestDatabase::create().await;
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let node_a = start_node(&database.url, &prefix).await;
    let node_b = start_node(&database.url, &prefix).await;

    let mut therapist = client_on(&node_b, &database);
    therapist.register("therapist", None).await;
    therapist
        .put_json("/api/therapists/me/profile", &sample_profile())
        .await
        .expect_status(200);
    therapist
        .put_json("/api/therapists/me/availability", &all_week())
        .await
        .expect_status(200);
    let mut client = client_on(&node_a, &database);
    client.register("client", None).await;

    let mut on_b = therapist.websocket().await;
    on_b.subscribe(&format!("calendar:{}", therapist.id()), None)
        .await;
    on_b.subscribe(&format!("user:{}", therapist.id()), None)
        .await;
    let (slots, seq) = client.slots(&therapist.id()).await;
    let mut on_a = client.websocket().await;
    on_a.subscribe(&format!("availability:{}", therapist.id()), Some(seq))
        .await;

    // Booked on A, seen on B.
    let booking = client
        .book(&therapist.id(), &slots[0]["start"])
        .await
        .expect_status(201);
    let booking_id = booking["id"].as_str().unwrap().to_owned();
    let created = on_b.event("booking.created").await;
    assert_eq!(created["event"]["booking"]["id"], booking["id"]);
    on_a.event("slot.taken").await;

    // B's calendar learnt of A's booking: it no longer offers the slot either.
    let (slots_seen_by_b, _) = therapist.slots(&therapist.id()).await;
    assert!(!slots_seen_by_b.contains(&slots[0]));

    // A message sent through A reaches the therapist's socket on B.
    let sent =
        json!({ "type": "message.send", "id": "m1", "booking_id": booking_id, "body": "hi" });
    assert_eq!(on_a.command(sent).await["type"], "ack");
    let message = on_b.event("message.created").await;
    assert_eq!(message["event"]["message"]["body"], "hi");

    // Signalling across nodes, in both directions.
    let join = json!({ "type": "room.join", "booking_id": booking_id });
    assert_eq!(on_b.command(join.clone()).await["type"], "ack");
    let joined = on_a.command(join).await;
    assert_eq!(
        joined["room"]["present"].as_array().unwrap().len(),
        2,
        "{joined}"
    );
    let offer = json!({ "description": { "type": "offer", "sdp": "v=0" } });
    on_b.command(json!({ "type": "room.signal", "booking_id": booking_id, "payload": offer }))
        .await;
    let got_offer = on_a
        .expect("offer", |f| f["event"]["kind"] == "room.signal")
        .await;
    assert_eq!(got_offer["event"]["payload"], offer);
    let answer = json!({ "description": { "type": "answer", "sdp": "v=0" } });
    on_a.command(json!({ "type": "room.signal", "booking_id": booking_id, "payload": answer }))
        .await;
    let got_answer = on_b
        .expect("answer", |f| {
            f["event"]["kind"] == "room.signal" && f["event"]["from"] == client.id().as_str()
        })
        .await;
    assert_eq!(got_answer["event"]["payload"], answer);
}
