use crate::helpers::{TEST_PASSWORD, TestApp};
use serde_json::json;

/// A person can register, is signed in at once, can sign out, and can sign in again.
#[actix_web::test]
async fn register_sign_out_and_sign_in_again() {
    let app = TestApp::spawn().await;
    let mut client = app.client();
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let user = client.register("client", Some(&email)).await;
    assert_eq!(user["role"], "client");
    assert_eq!(
        client.get("/api/me").await.expect_status(200)["user"]["email"],
        email.as_str()
    );

    client
        .send(client.http.post(format!("{}/api/auth/logout", client.base)))
        .await
        .expect_status(204);
    client
        .get("/api/me")
        .await
        .expect_error(401, "unauthenticated");

    let login = json!({ "email": email.to_uppercase(), "password": TEST_PASSWORD });
    let reply = client.post_json("/api/auth/login", &login).await;
    client.cookie = reply.set_cookie.clone();
    reply.expect_status(200);
    assert_eq!(
        client.get("/api/me").await.expect_status(200)["user"]["id"],
        user["id"]
    );
}

/// A wrong password and an unknown email get the same answer, so neither reveals an account.
#[actix_web::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let mut client = app.client();
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    client.register("client", Some(&email)).await;

    let anonymous = app.client();
    let wrong = anonymous
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": "not the password!" }),
        )
        .await;
    let unknown = anonymous
        .post_json(
            "/api/auth/login",
            &json!({ "email": "nobody@example.test", "password": "whatever12345" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.set_cookie.is_none());
}

/// Registration refuses minors, weak passwords, bad emails and staff roles; registering an
/// address twice looks exactly like the first time and mails the owner instead.
#[actix_web::test]
async fn registration_refuses_what_it_must() {
    let app = TestApp::spawn().await;
    let anonymous = app.client();
    let form = |email: &str, password: &str, role: &str, adult: bool| json!({ "email": email, "password": password, "role": role, "adult": adult });

    let minor = anonymous
        .post_json(
            "/api/auth/register",
            &form("a@example.test", TEST_PASSWORD, "client", false),
        )
        .await;
    minor.expect_error(422, "validation");
    let short = anonymous
        .post_json(
            "/api/auth/register",
            &form("b@example.test", "short", "client", true),
        )
        .await;
    short.expect_error(422, "validation");
    let common = anonymous
        .post_json(
            "/api/auth/register",
            &form("b@example.test", "password1234", "client", true),
        )
        .await;
    common.expect_error(422, "validation");
    let own_name = anonymous
        .post_json(
            "/api/auth/register",
            &form(
                "maryjones@example.test",
                "maryjones@example.test",
                "client",
                true,
            ),
        )
        .await;
    own_name.expect_error(422, "validation");
    let bad_email = anonymous
        .post_json(
            "/api/auth/register",
            &form("not-an-email", TEST_PASSWORD, "client", true),
        )
        .await;
    bad_email.expect_error(422, "validation");
    let staff = anonymous
        .post_json(
            "/api/auth/register",
            &form("c@example.test", TEST_PASSWORD, "staff", true),
        )
        .await;
    staff.expect_error(400, "bad_request");

    let mut first = app.client();
    first.register("client", Some("taken@example.test")).await;
    let again = anonymous
        .post_json(
            "/api/auth/register",
            &form("Taken@example.test", TEST_PASSWORD, "therapist", true),
        )
        .await;
    assert_eq!(again.expect_status(202)["status"], "check_your_email");
    let (subject, _) = anonymous.last_mail("Taken@example.test").await;
    assert!(subject.contains("tried to register"), "{subject}");

    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "refused registrations created nothing");
}

/// The session cookie cannot be read by scripts and is not sent cross-site.
#[actix_web::test]
async fn the_session_cookie_is_http_only_and_same_site_strict() {
    let app = TestApp::spawn().await;
    let anonymous = app.client();
    let body = json!({
        "email": "cookie@example.test", "password": TEST_PASSWORD, "role": "client", "adult": true
    });
    anonymous
        .post_json("/api/auth/register", &body)
        .await
        .expect_status(202);
    let token = anonymous.mailed_token("cookie@example.test").await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/verify-email", app.address))
        .header("Origin", &app.address)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("paranimo_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}
