use crate::helpers::{Client, TEST_PASSWORD, TestApp};
use crate::mfa::{authenticator, code_at};
use serde_json::json;

fn login_body(email: &str, password: &str) -> serde_json::Value {
    json!({ "email": email, "password": password })
}

/// Signs `client` in again with the test password, from its own address.
async fn sign_in(client: &mut Client, email: &str, password: &str) -> u16 {
    let reply = client
        .post_json("/api/auth/login", &login_body(email, password))
        .await;
    if reply.set_cookie.is_some() {
        client.cookie = reply.set_cookie.clone();
    }
    reply.status.as_u16()
}

/// Twenty wrong passwords in a row slow the next attempt at that account from that address,
/// and that address at any account, but not other accounts, nor the owner signing in from
/// their own address (so failing on purpose cannot lock an owner out).
#[actix_web::test]
async fn repeated_wrong_passwords_slow_that_account_and_address_only() {
    let app = TestApp::spawn().await;
    let victim_email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut victim = app.client();
    victim.register("client", Some(&victim_email)).await;
    let bystander_email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut bystander = app.client();
    bystander.register("client", Some(&bystander_email)).await;

    let attacker = app.client();
    for _ in 0..20 {
        let reply = attacker
            .post_json(
                "/api/auth/login",
                &login_body(&victim_email, "wrong guess 123"),
            )
            .await;
        assert!(matches!(reply.status.as_u16(), 401 | 429), "{}", reply.body);
    }

    let again = attacker
        .post_json("/api/auth/login", &login_body(&victim_email, TEST_PASSWORD))
        .await;
    assert_eq!(
        again.status, 429,
        "that account from that address, even with the right password"
    );
    assert!(again.set_cookie.is_none());
    let elsewhere = attacker
        .post_json(
            "/api/auth/login",
            &login_body(&bystander_email, TEST_PASSWORD),
        )
        .await;
    assert_eq!(
        elsewhere.status, 429,
        "the guessing address is slowed for every account"
    );
    assert_eq!(
        sign_in(&mut bystander, &bystander_email, TEST_PASSWORD).await,
        200,
        "others are not"
    );
    assert_eq!(
        sign_in(&mut victim, &victim_email, TEST_PASSWORD).await,
        200,
        "nor the owner"
    );

    let throttled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'user.login_throttled'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(throttled >= 2);
}

/// Guesses spread over many addresses still slow the account they aim at.
#[actix_web::test]
async fn guesses_from_many_addresses_slow_the_account() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    app.client().register("client", Some(&email)).await;
    for _ in 0..20 {
        let botnet_member = app.client();
        let reply = botnet_member
            .post_json("/api/auth/login", &login_body(&email, "wrong guess 123"))
            .await;
        assert_eq!(reply.status, 401);
    }
    let next = app
        .client()
        .post_json("/api/auth/login", &login_body(&email, "wrong guess 456"))
        .await;
    next.expect_error(429, "rate_limited");
}

/// A signed-in session cannot guess the password (or second-factor codes) without limit.
#[actix_web::test]
async fn a_signed_in_session_cannot_guess_the_password() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let wrong = json!({ "current_password": "not it at all 9", "new_password": "orchard tunnel maple 4471" });
    for _ in 0..5 {
        client
            .post_json("/api/auth/password", &wrong)
            .await
            .expect_error(401, "invalid_credentials");
    }
    client
        .post_json("/api/auth/password", &wrong)
        .await
        .expect_error(429, "rate_limited");
    let enrol = json!({ "password": "still not it 22" });
    client
        .post_json("/api/mfa/enrol", &enrol)
        .await
        .expect_error(429, "rate_limited");
}

/// A reset link works once, signs the account out everywhere (closing open sockets), and
/// the new password works; an expired link does not.
#[actix_web::test]
async fn password_reset_links_are_single_use_expire_and_sign_out_everywhere() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut client = app.client();
    client.register("client", Some(&email)).await;
    let mut socket = client.websocket().await;

    let anonymous = app.client();
    let request = anonymous
        .post_json("/api/auth/password-reset", &json!({ "email": email }))
        .await;
    assert_eq!(request.expect_status(202)["status"], "check_your_email");
    let unknown = anonymous
        .post_json(
            "/api/auth/password-reset",
            &json!({ "email": "nobody@example.test" }),
        )
        .await;
    assert_eq!(
        unknown.expect_status(202)["status"],
        "check_your_email",
        "same answer for nobody"
    );

    let token = anonymous.mailed_token_about(&email, "Reset").await;
    let new_password = "harbour violet sketch 9120";
    let confirm = json!({ "token": token, "new_password": new_password });
    anonymous
        .post_json("/api/auth/password-reset/confirm", &confirm)
        .await
        .expect_status(204);
    anonymous
        .post_json("/api/auth/password-reset/confirm", &confirm)
        .await
        .expect_error(400, "invalid_token");

    let closed = socket
        .expect("socket closed", |f| f["type"] == "socket_closed")
        .await;
    assert_eq!(closed["type"], "socket_closed");
    client
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
    let mut again = app.client();
    assert_eq!(sign_in(&mut again, &email, TEST_PASSWORD).await, 401);
    assert_eq!(sign_in(&mut again, &email, new_password).await, 200);

    // An expired link fails even though it was never used.
    anonymous
        .post_json("/api/auth/password-reset", &json!({ "email": email }))
        .await
        .expect_status(202);
    let stale = anonymous.mailed_token_about(&email, "Reset").await;
    sqlx::query(
        "UPDATE email_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let late = json!({ "token": stale, "new_password": "another fine phrase 6631" });
    anonymous
        .post_json("/api/auth/password-reset/confirm", &late)
        .await
        .expect_error(400, "invalid_token");
}

/// Changing the password keeps this device signed in with a new token and signs out the rest.
#[actix_web::test]
async fn changing_the_password_signs_out_every_other_device() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut laptop = app.client();
    laptop.register("client", Some(&email)).await;
    let mut phone = app.client();
    assert_eq!(sign_in(&mut phone, &email, TEST_PASSWORD).await, 200);
    let old_laptop_cookie = laptop.cookie.clone();

    let change =
        json!({ "current_password": TEST_PASSWORD, "new_password": "orchard tunnel maple 4471" });
    let wrong = json!({ "current_password": "not it at all 9", "new_password": "orchard tunnel maple 4471" });
    laptop
        .post_json("/api/auth/password", &wrong)
        .await
        .expect_error(401, "invalid_credentials");
    let reply = laptop.post_json("/api/auth/password", &change).await;
    assert!(reply.set_cookie.is_some(), "a new session token");
    assert_ne!(reply.set_cookie, old_laptop_cookie);
    laptop.cookie = reply.set_cookie.clone();
    reply.expect_status(200);

    laptop.get("/api/me").await.expect_status(200);
    phone
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
    let mut stale = app.client();
    stale.cookie = old_laptop_cookie;
    stale
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
    let (subject, _) = laptop.last_mail(&email).await;
    assert!(subject.contains("password was changed"), "{subject}");
}

/// "Your devices" lists each session; revoking one closes its open websocket at once, and
/// nobody can revoke someone else's session.
#[actix_web::test]
async fn devices_can_be_listed_and_revoked_and_their_sockets_close() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut laptop = app.client();
    laptop.register("client", Some(&email)).await;
    let mut phone = app.client();
    assert_eq!(sign_in(&mut phone, &email, TEST_PASSWORD).await, 200);
    let mut phone_socket = phone.websocket().await;

    let devices = laptop.get("/api/sessions").await.expect_status(200);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let other = devices
        .iter()
        .find(|d| d["current"] == false)
        .expect("the phone");

    let stranger = app.new_client().await;
    let path = format!("/api/sessions/{}", other["id"].as_str().unwrap());
    let delete = |c: &Client| c.http.delete(format!("{}{path}", c.base));
    stranger
        .send(delete(&stranger))
        .await
        .expect_error(404, "not_found");
    phone.get("/api/me").await.expect_status(200);

    laptop.send(delete(&laptop)).await.expect_status(204);
    let closing = phone_socket
        .expect("closing", |f| f["type"] == "closing")
        .await;
    assert_eq!(closing["reason"], "signed out");
    phone
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
    laptop.get("/api/me").await.expect_status(200);

    let everywhere = laptop
        .http
        .post(format!("{}/api/sessions/revoke-all", laptop.base));
    laptop.send(everywhere).await.expect_status(204);
    laptop
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
}

/// An unconfirmed address cannot sign in; the attempt sends a fresh link, which works once.
#[actix_web::test]
async fn an_unconfirmed_address_must_be_confirmed_before_signing_in() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut client = app.client();
    let form =
        json!({ "email": email, "password": TEST_PASSWORD, "role": "client", "adult": true });
    client
        .post_json("/api/auth/register", &form)
        .await
        .expect_status(202);

    let refused = client
        .post_json("/api/auth/login", &login_body(&email, TEST_PASSWORD))
        .await;
    refused.expect_error(403, "email_unverified");
    let token = client.mailed_token(&email).await;
    let verified = client
        .post_json("/api/auth/verify-email", &json!({ "token": token }))
        .await;
    client.cookie = verified.set_cookie.clone();
    verified.expect_status(200);
    client.get("/api/me").await.expect_status(200);
    let reuse = client
        .post_json("/api/auth/verify-email", &json!({ "token": token }))
        .await;
    reuse.expect_error(400, "invalid_token");
}

/// A second factor turns sign-in into two steps; a wrong code never starts a session, and
/// a code cannot be replayed for a second sign-in.
#[actix_web::test]
async fn sign_in_with_a_second_factor_takes_two_steps() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut client = app.client();
    client.register("therapist", Some(&email)).await;
    let enrolment = client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let app_on_phone = authenticator(&secret);
    let code = code_at(&app_on_phone, 0);
    client
        .post_json("/api/mfa/confirm", &json!({ "code": code }))
        .await
        .expect_status(200);

    let mut device = app.client();
    let first = device
        .post_json("/api/auth/login", &login_body(&email, TEST_PASSWORD))
        .await;
    assert!(
        first.set_cookie.is_none(),
        "no session before the second factor"
    );
    let first = first.expect_status(200);
    assert_eq!(first["mfa_required"], true);
    let challenge = first["challenge"].as_str().unwrap().to_owned();

    let wrong = json!({ "challenge": challenge, "code": "000000" });
    device
        .post_json("/api/auth/login/mfa", &wrong)
        .await
        .expect_error(401, "invalid_credentials");
    let next = code_at(&app_on_phone, 1);
    let right = json!({ "challenge": challenge, "code": next });
    let done = device.post_json("/api/auth/login/mfa", &right).await;
    device.cookie = done.set_cookie.clone();
    done.expect_status(200);
    device.get("/api/me").await.expect_status(200);

    let again = device
        .post_json("/api/auth/login", &login_body(&email, TEST_PASSWORD))
        .await
        .expect_status(200);
    let replay = json!({ "challenge": again["challenge"], "code": next });
    device
        .post_json("/api/auth/login/mfa", &replay)
        .await
        .expect_error(401, "invalid_credentials");
}

/// A password hashed with weaker parameters than today's still signs in, and is rehashed
/// with the current ones on the way.
#[actix_web::test]
async fn old_password_hashes_are_upgraded_at_sign_in() {
    use argon2::password_hash::PasswordHasher;
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let mut client = app.client();
    client.register("client", Some(&email)).await;

    let weak = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
    let old = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, weak)
        .hash_password(TEST_PASSWORD.as_bytes())
        .unwrap()
        .to_string();
    sqlx::query("UPDATE users SET password_hash = $1")
        .bind(&old)
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(sign_in(&mut client, &email, TEST_PASSWORD).await, 200);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, old);
    assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
    assert_eq!(sign_in(&mut client, &email, TEST_PASSWORD).await, 200);
}

/// A session ends after its idle time, and after its absolute lifetime however busy it is.
#[actix_web::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let app = TestApp::spawn().await;
    let idle = app.new_client().await;
    let busy = app.new_client().await;
    idle.get("/api/me").await.expect_status(200);

    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1")
        .bind(uuid::Uuid::parse_str(&idle.id()).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    idle.get("/api/me")
        .await
        .expect_error(401, "unauthenticated");

    sqlx::query(
        "UPDATE sessions SET absolute_expires_at = now() - interval '1 second', \
         last_seen_at = now() WHERE user_id = $1",
    )
    .bind(uuid::Uuid::parse_str(&busy.id()).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    busy.get("/api/me")
        .await
        .expect_error(401, "unauthenticated");
}
