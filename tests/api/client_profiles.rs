//! A client's private profile: encrypted at rest, readable by a therapist only while the client
//! consents, refused to everyone else, revoked at once (open pages included), and audited
//! without its contents.

use crate::helpers::{Client, Reply, TestApp, TestDatabase, redis_url};
use paranimo::admin::OperatorRole;
use serde_json::{Value, json};
use sqlx::Row;
use std::process::{Command, Stdio};
use uuid::Uuid;

const PROFILE: &str = "/api/clients/me/profile";
const CONSENTS: &str = "/api/clients/me/consents";

/// Words distinctive enough that finding them anywhere means they leaked.
fn sample_fields() -> Value {
    json!({
        "bio": "Marmalade-loving night-shift nurse from Hexham",
        "goals": "Sleep through the night without the kitchen-light ritual",
        "frustrations": "Rumination about the Tuesday handover meetings",
        "health_notes": "Sertraline 50mg since March; mild asthma",
    })
}

fn client_profile_path(client: &Client) -> String {
    format!("/api/clients/{}/profile", client.id())
}

async fn delete(client: &Client, path: &str) -> Reply {
    client
        .send(client.http.delete(format!("{}{path}", client.base)))
        .await
}

async fn grant(client: &Client, therapist: &Client) -> Reply {
    let body = json!({ "therapist_id": therapist.id() });
    client.post_json(CONSENTS, &body).await
}

async fn revoke(client: &Client, therapist: &Client) -> Reply {
    delete(client, &format!("{CONSENTS}/{}", therapist.id())).await
}

/// Every stored byte of the profile tables, for looking for plaintext.
async fn stored_bytes(app: &TestApp) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = sqlx::query_scalar("SELECT wrapped_key FROM user_data_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let profiles =
        sqlx::query("SELECT bio, goals, frustrations, health_notes FROM client_profiles")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for row in profiles {
        for column in ["bio", "goals", "frustrations", "health_notes"] {
            all.extend(row.get::<Option<Vec<u8>>, _>(column));
        }
    }
    all
}

/// The `Cache-Control` header of a signed-in GET.
async fn cache_control(client: &Client, path: &str) -> Option<String> {
    let mut request = client.http.get(format!("{}{path}", client.base));
    if let Some(cookie) = &client.cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.expect("request sent");
    let value = response.headers().get("cache-control")?;
    value.to_str().ok().map(str::to_owned)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The client saves every field and reads them back; blank, null and missing fields clear;
/// an over-long field is refused without being echoed; the answer is never cached.
#[actix_web::test]
async fn a_client_writes_their_profile_and_reads_it_back() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;

    let empty = client.get(PROFILE).await.expect_status(200);
    assert_eq!(empty["client_id"], client.id().as_str());
    assert!(empty["bio"].is_null() && empty["updated_at"].is_null());

    let saved = client.put_json(PROFILE, &sample_fields()).await;
    let saved = saved.expect_status(200);
    for (name, value) in sample_fields().as_object().unwrap() {
        assert_eq!(&saved[name], value, "{name} as saved");
    }
    assert!(saved["updated_at"].is_string());
    assert_eq!(
        cache_control(&client, PROFILE).await.as_deref(),
        Some("no-store"),
        "a health profile must not be cached"
    );
    let read = client.get(PROFILE).await.expect_status(200);
    for (name, value) in sample_fields().as_object().unwrap() {
        assert_eq!(&read[name], value, "{name} read back");
    }

    // PUT replaces the whole profile: blank, null and missing all clear.
    let partial = json!({ "bio": "  Just the bio now.  ", "goals": "   ", "frustrations": null });
    let after = client.put_json(PROFILE, &partial).await.expect_status(200);
    assert_eq!(after["bio"], "Just the bio now.");
    assert!(after["goals"].is_null() && after["frustrations"].is_null());
    assert!(after["health_notes"].is_null());
    let read = client.get(PROFILE).await.expect_status(200);
    assert_eq!(read["bio"], "Just the bio now.");
    assert!(read["goals"].is_null() && read["health_notes"].is_null());

    // 4,000 characters (not bytes) are fine; one more is refused without being repeated.
    let longest = "é".repeat(4000);
    let ok = client.put_json(PROFILE, &json!({ "goals": longest })).await;
    assert_eq!(ok.expect_status(200)["goals"], longest.as_str());
    let too_long = format!("{}x", "secret ".repeat(600).trim_end());
    let refused = client
        .put_json(PROFILE, &json!({ "goals": too_long }))
        .await;
    assert!(!refused.body.to_string().contains("secret"));
    refused.expect_error(422, "validation");
    let unknown = client.put_json(PROFILE, &json!({ "diagnosis": "x" })).await;
    unknown.expect_error(400, "bad_request");
    let read = client.get(PROFILE).await.expect_status(200);
    assert_eq!(
        read["goals"],
        longest.as_str(),
        "a refused write changed nothing"
    );
}

/// PostgreSQL holds ciphertext only: no field's words appear in any stored column, nor in the
/// wrapped key; and a ciphertext copied into another client's row does not open there.
#[actix_web::test]
async fn the_database_holds_no_plaintext() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);

    let stored = stored_bytes(&app).await;
    assert_eq!(stored.len(), 5, "four fields and one wrapped key");
    for (name, value) in sample_fields().as_object().unwrap() {
        let plain = value.as_str().unwrap().as_bytes();
        for blob in &stored {
            assert!(!contains(blob, plain), "{name} is stored in the clear");
            // Nor any recognisable piece of it.
            assert!(
                !contains(blob, &plain[..12]),
                "part of {name} is in the clear"
            );
        }
    }
    let key_version: i16 = sqlx::query_scalar("SELECT key_version FROM user_data_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(key_version, 1);

    // Another client's row given this client's ciphertext: it must not decrypt as theirs.
    let other = app.new_client().await;
    other
        .put_json(PROFILE, &json!({ "bio": "mine" }))
        .await
        .expect_status(200);
    sqlx::query(
        "UPDATE client_profiles SET bio = (SELECT bio FROM client_profiles WHERE user_id = $1) \
         WHERE user_id = $2",
    )
    .bind(client.id().parse::<Uuid>().unwrap())
    .bind(other.id().parse::<Uuid>().unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let moved = other.get(PROFILE).await;
    assert!(!moved.body.to_string().contains("Marmalade"));
    moved.expect_error(500, "internal");

    // Nor does a field moved to another column of the same row.
    sqlx::query("UPDATE client_profiles SET goals = bio WHERE user_id = $1")
        .bind(client.id().parse::<Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    client.get(PROFILE).await.expect_error(500, "internal");
}

/// A therapist reads the profile only while the client consents: 404 before, the fields
/// during, and 404 again the moment consent is revoked, while their open page is told to drop
/// it.
#[actix_web::test]
async fn a_therapist_reads_only_while_the_client_consents() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let therapist = app.new_therapist().await;
    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);
    let path = client_profile_path(&client);

    therapist.get(&path).await.expect_error(404, "not_found");

    let mut page = therapist.websocket().await;
    page.subscribe(&format!("user:{}", therapist.id()), None)
        .await;

    let granted = grant(&client, &therapist).await.expect_status(201);
    assert_eq!(granted["therapist_id"], therapist.id().as_str());
    assert_eq!(granted["therapist_name"], "Dr Test Therapist");
    let event = page.event("consent.granted").await;
    assert_eq!(event["event"]["client_id"], client.id().as_str());
    assert_eq!(event["event"]["therapist_id"], therapist.id().as_str());
    // Granting again changes nothing and says so.
    let again = grant(&client, &therapist).await.expect_status(200);
    assert_eq!(again["granted_at"], granted["granted_at"]);

    let listed = client.get(CONSENTS).await.expect_status(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["therapist_id"], therapist.id().as_str());

    let read = therapist.get(&path).await.expect_status(200);
    for (name, value) in sample_fields().as_object().unwrap() {
        assert_eq!(&read[name], value, "the therapist sees {name}");
    }

    revoke(&client, &therapist).await.expect_status(204);
    therapist.get(&path).await.expect_error(404, "not_found");
    let event = page.event("consent.revoked").await;
    assert_eq!(event["event"]["client_id"], client.id().as_str());
    assert_eq!(event["event"]["therapist_id"], therapist.id().as_str());
    let listed = client.get(CONSENTS).await.expect_status(200);
    assert_eq!(listed, json!([]));

    // Revoking again is harmless and announces nothing more.
    revoke(&client, &therapist).await.expect_status(204);
    assert!(
        page.no_event("consent.revoked", std::time::Duration::from_millis(300))
            .await
    );

    // A new grant opens it again; the history keeps both periods.
    grant(&client, &therapist).await.expect_status(201);
    therapist.get(&path).await.expect_status(200);
    let periods: i64 = sqlx::query_scalar("SELECT count(*) FROM client_consents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(periods, 2);
}

/// Two grants racing make one consent: one 201, one 200, one active row.
#[actix_web::test]
async fn racing_grants_make_one_consent() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let therapist = app.new_therapist().await;
    let (a, b) = futures_util::join!(grant(&client, &therapist), grant(&client, &therapist));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM client_consents WHERE revoked_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(active, 1);
}

/// Another client, another therapist, staff, admin and anonymous visitors never read it, and
/// cannot tell it from a client who does not exist.
#[actix_web::test]
async fn nobody_else_reads_a_client_profile() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let therapist = app.new_therapist().await;
    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);
    grant(&client, &therapist).await.expect_status(201);
    let path = client_profile_path(&client);

    // Another therapist holding consent from a different client gains nothing here.
    let other_therapist = app.new_therapist().await;
    let other_client = app.new_client().await;
    grant(&other_client, &other_therapist)
        .await
        .expect_status(201);
    let staff = app.operator(OperatorRole::Staff).await;
    let admin = app.operator(OperatorRole::Admin).await;

    let nobody = format!("/api/clients/{}/profile", Uuid::new_v4());
    for (who, caller) in [
        ("another client", &other_client),
        ("another therapist", &other_therapist),
        ("staff", &staff),
        ("admin", &admin),
    ] {
        let refused = caller.get(&path).await;
        assert!(!refused.body.to_string().contains("Marmalade"), "{who}");
        assert_eq!(refused.status, 404, "{who}");
        let missing = caller.get(&nobody).await;
        assert_eq!(refused.body, missing.body, "{who} can tell a client exists");
    }
    app.client()
        .get(&path)
        .await
        .expect_error(401, "unauthenticated");
    // A malformed id is simply not found too.
    therapist
        .get("/api/clients/not-an-id/profile")
        .await
        .expect_error(404, "not_found");
}

/// Consent goes only to a therapist who exists: an unknown id, a client's id, or one's own
/// is "not found", and nothing is stored.
#[actix_web::test]
async fn consent_for_a_nonexistent_therapist_is_not_found() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let another_client = app.new_client().await;

    for therapist_id in [Uuid::new_v4().to_string(), another_client.id(), client.id()] {
        let body = json!({ "therapist_id": therapist_id });
        client
            .post_json(CONSENTS, &body)
            .await
            .expect_error(404, "not_found");
    }
    let bad = client
        .post_json(CONSENTS, &json!({ "therapist_id": "nope" }))
        .await;
    bad.expect_error(400, "bad_request");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM client_consents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

/// The audit trail records every change and every therapist's read, with ids only: no
/// field's words appear anywhere in it, and the chain still verifies.
#[actix_web::test]
async fn the_audit_log_records_reads_and_changes_without_contents() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let therapist = app.new_therapist().await;
    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);
    grant(&client, &therapist).await.expect_status(201);
    therapist
        .get(&client_profile_path(&client))
        .await
        .expect_status(200);
    // The client's own reads are not therapist reads.
    client.get(PROFILE).await.expect_status(200);
    revoke(&client, &therapist).await.expect_status(204);

    let rows: Vec<(String, Option<Uuid>, String, String, Value)> = sqlx::query_as(
        r#"
        SELECT action, actor_id, object_type, object_id, detail
        FROM audit_events
        WHERE action LIKE 'client_%'
        ORDER BY id
        "#,
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "client_profile.updated",
            "client_consent.granted",
            "client_profile.read",
            "client_consent.revoked",
        ]
    );
    let client_id: Uuid = client.id().parse().unwrap();
    let therapist_id: Uuid = therapist.id().parse().unwrap();
    let read = &rows[2];
    assert_eq!(read.1, Some(therapist_id), "the reader is the actor");
    assert_eq!(
        (read.2.as_str(), read.3.as_str()),
        ("client_profile", client.id().as_str())
    );
    assert_eq!(read.4, json!({}), "a read records ids only");
    assert_eq!(rows[1].1, Some(client_id));
    assert_eq!(rows[1].4["therapist_id"], therapist.id().as_str());

    let everything: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', action, object_type, object_id, detail::text) FROM audit_events",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for (name, value) in sample_fields().as_object().unwrap() {
        let words = &value.as_str().unwrap()[..12];
        assert!(
            everything.iter().all(|row| !row.contains(words)),
            "{name} leaked into the audit log"
        );
    }
    let report = crate::helpers::seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.unsealed, 0);
}

/// Every caller against every endpoint: anonymous visitors are asked to sign in; the "me"
/// endpoints belong to clients (403 for other roles); a client's profile by id is readable by
/// that client and a therapist they consent to, and "not found" for everyone else.
#[actix_web::test]
async fn the_access_matrix_over_http() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let consented = app.new_therapist().await;
    let unconsented = app.new_therapist().await;
    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);
    grant(&client, &consented).await.expect_status(201);

    let anonymous = app.client();
    let other_client = app.new_client().await;
    let staff = app.operator(OperatorRole::Staff).await;
    let admin = app.operator(OperatorRole::Admin).await;

    // Statuses for: read own profile, write own profile, list consents, grant consent,
    // revoke consent, read this client's profile by id.
    let matrix: [(&str, &Client, [u16; 6]); 7] = [
        ("anonymous", &anonymous, [401, 401, 401, 401, 401, 401]),
        ("the client", &client, [200, 200, 200, 200, 204, 200]),
        (
            "another client",
            &other_client,
            [200, 200, 200, 201, 204, 404],
        ),
        (
            "therapist with consent",
            &consented,
            [403, 403, 403, 403, 403, 200],
        ),
        (
            "therapist without",
            &unconsented,
            [403, 403, 403, 403, 403, 404],
        ),
        ("staff", &staff, [403, 403, 403, 403, 403, 404]),
        ("admin", &admin, [403, 403, 403, 403, 403, 404]),
    ];
    let by_id = client_profile_path(&client);
    // Granting names the consented therapist (already active for the client); revoking names
    // the other one, so the client's consent survives the matrix.
    let grant_body = json!({ "therapist_id": consented.id() });
    let revoke_path = format!("{CONSENTS}/{}", unconsented.id());

    for (who, caller, expected) in matrix {
        let actual = [
            caller.get(PROFILE).await,
            caller.put_json(PROFILE, &sample_fields()).await,
            caller.get(CONSENTS).await,
            caller.post_json(CONSENTS, &grant_body).await,
            delete(caller, &revoke_path).await,
            caller.get(&by_id).await,
        ];
        let names = [
            "read own",
            "write own",
            "list",
            "grant",
            "revoke",
            "read by id",
        ];
        for ((reply, want), action) in actual.iter().zip(expected).zip(names) {
            assert_eq!(
                reply.status.as_u16(),
                want,
                "{who}: {action}: {}",
                reply.body
            );
            if want == 200 && action == "read by id" {
                assert_eq!(reply.body["bio"], sample_fields()["bio"], "{who}");
            } else if action == "read by id" {
                assert!(!reply.body.to_string().contains("Marmalade"), "{who}");
            }
        }
    }
}

/// Production refuses to start without a master key, or with a malformed one, and never
/// repeats the value; development starts with the development key.
#[actix_web::test]
async fn production_needs_a_master_key() {
    let database = TestDatabase::create().await;
    let run = |production: bool, key: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_paranimo"));
        command
            .arg("migrate")
            .env("DATABASE_URL", &database.url)
            .env("REDIS_URL", redis_url())
            .env("PUBLIC_ORIGIN", "https://paranimo.test")
            .env("MAIL_TRANSPORT", "folder:/tmp/paranimo-unused-mail")
            .env("RUST_LOG", "warn")
            .env_remove("MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if production {
            command.env("PARANIMO_ENV", "production");
        } else {
            command.env_remove("PARANIMO_ENV");
        }
        if let Some(key) = key {
            command.env("MASTER_KEY", key);
        }
        let output = command.output().expect("the server binary runs");
        // Logs go to standard output, the final error to standard error: read both.
        let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status.success(), printed)
    };

    let (ok, stderr) = run(true, None);
    assert!(!ok && stderr.contains("MASTER_KEY must be set"), "{stderr}");
    let malformed = "bm90LWEta2V5LWJ1dC1sb25nLWVub3VnaA";
    let (ok, stderr) = run(true, Some(malformed));
    assert!(!ok && stderr.contains("MASTER_KEY"), "{stderr}");
    assert!(
        !stderr.contains(malformed),
        "the value was repeated: {stderr}"
    );

    let (ok, stderr) = run(true, Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
    assert!(ok, "a good key starts: {stderr}");
    // Development runs without one (the server warns when it serves; see the log test).
    let (ok, stderr) = run(false, None);
    assert!(ok, "development starts without a key: {stderr}");
}

/// The server, logging at debug level for every crate, is sent a profile to save, read by a
/// consented therapist, refused when too long or malformed, and revoked: no field's words
/// reach its log. Serving without `MASTER_KEY`, it warns that the development key is in use.
#[actix_web::test]
async fn profile_fields_never_reach_the_log() {
    let database = TestDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = std::env::temp_dir().join(format!("paranimo-profile-log-{}", Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mail = std::env::temp_dir().join(format!("paranimo-mail-{}", Uuid::new_v4().simple()));
    let server = Command::new(env!("CARGO_BIN_EXE_paranimo"))
        .arg("serve")
        .env("DATABASE_URL", &database.url)
        .env("REDIS_URL", redis_url())
        .env("REDIS_PREFIX", format!("test-{}:", Uuid::new_v4().simple()))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("HTTP_WORKERS", "1")
        .env("RUST_LOG", "debug")
        .env("MAIL_TRANSPORT", format!("folder:{}", mail.display()))
        .env_remove("PARANIMO_ENV")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the server binary starts");
    // Killed however the test ends, so a failed assertion leaves no server behind.
    let server = KillOnDrop(server);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = reqwest::get(format!("{base}/readyz")).await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never became ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let pool = sqlx::PgPool::connect_lazy(&database.url).unwrap();
    let mut client = Client::new(&base);
    client.mail = Some(pool.clone());
    client.register("client", None).await;
    let mut therapist = Client::new(&base);
    therapist.mail = Some(pool.clone());
    therapist.register("therapist", None).await;

    client
        .put_json(PROFILE, &sample_fields())
        .await
        .expect_status(200);
    client.get(PROFILE).await.expect_status(200);
    grant(&client, &therapist).await.expect_status(201);
    therapist
        .get(&client_profile_path(&client))
        .await
        .expect_status(200);
    let too_long = json!({ "bio": format!("{} ", sample_fields()["bio"].as_str().unwrap())
        .repeat(200) });
    client
        .put_json(PROFILE, &too_long)
        .await
        .expect_error(422, "validation");
    let malformed = json!({ "bio": sample_fields()["bio"], "goals": 42 });
    client
        .put_json(PROFILE, &malformed)
        .await
        .expect_error(400, "bad_request");
    revoke(&client, &therapist).await.expect_status(204);
    drop(server);

    let logged = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logged.contains("client profile saved"),
        "the log was captured"
    );
    assert!(
        logged.contains("public development master key"),
        "serving with the development key is announced"
    );
    for (name, value) in sample_fields().as_object().unwrap() {
        let value = value.as_str().unwrap();
        for piece in value.split_whitespace().filter(|w| w.len() >= 8) {
            assert!(!logged.contains(piece), "{name} ({piece}) reached the log");
        }
    }
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
