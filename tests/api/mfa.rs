//! Multi-factor authentication: enrolment over HTTP, the replay defence, recovery codes, the
//! operator command that makes staff accounts, and the audit trail of all of it.

use crate::helpers::{Client, TEST_PASSWORD, TestApp, TestDatabase};
use paranimo::admin::{self, OperatorRole};
use paranimo::mfa::{self, FactorCheck, MfaError};
use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The password every account in these tests uses.
const PASSWORD: &str = "correct horse battery staple";

/// What an authenticator app would build from the secret: the parameters are spelled out
/// here rather than taken from the server, so a change to them breaks this test.
pub fn authenticator(secret: &str) -> Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).expect("base32 secret"))
        .build()
        .expect("authenticator parameters")
}

/// The code the app shows `steps` time steps from now (negative: in the past).
pub fn code_at(totp: &Totp, steps: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + steps * 30) as u64).to_string()
}

/// A six-digit code that is valid for none of the steps around now.
fn wrong_code(totp: &Totp) -> String {
    let valid: Vec<String> = (-2..=3).map(|s| code_at(totp, s)).collect();
    let mut n: u32 = code_at(totp, 0).parse().unwrap();
    loop {
        n = (n + 1) % 1_000_000;
        let candidate = format!("{n:06}");
        if !valid.contains(&candidate) {
            return candidate;
        }
    }
}

fn user_id(client: &Client) -> UserId {
    client.id().parse().expect("user id")
}

/// A signed-in client who has enrolled and confirmed a second factor over HTTP.
async fn enrolled_client(app: &TestApp) -> (Client, Totp, Vec<String>) {
    let client = app.new_client().await;
    let enrolment = client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
    let totp = authenticator(enrolment["secret"].as_str().expect("secret"));
    let confirmed = client
        .post_json("/api/mfa/confirm", &json!({ "code": code_at(&totp, 0) }))
        .await
        .expect_status(200);
    let codes = recovery_codes(&confirmed);
    (client, totp, codes)
}

fn recovery_codes(body: &Value) -> Vec<String> {
    body["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

/// Enrols `user` directly through the domain functions, for accounts with no HTTP session.
async fn enrol_directly(app: &TestApp, user: UserId) -> Totp {
    let enrolment = mfa::begin_enrolment(&app.pool, user, "someone@example.test")
        .await
        .expect("enrolment starts");
    let totp = authenticator(&enrolment.secret);
    mfa::confirm_enrolment(&app.pool, user, &code_at(&totp, 0))
        .await
        .expect("enrolment confirmed");
    totp
}

async fn audit_actions(app: &TestApp, user: UserId) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY id")
        .bind(user.to_string())
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Enrolment gives an app-ready secret and URL, refuses a wrong first code, and on a right
/// one turns the factor on and hands out ten recovery codes, once.
#[actix_web::test]
async fn enrolling_over_http_turns_the_factor_on_and_hands_out_recovery_codes() {
    let app = TestApp::spawn().await;
    app.client()
        .get("/api/mfa")
        .await
        .expect_error(401, "unauthenticated");
    let client = app.new_client().await;
    let before = client.get("/api/mfa").await.expect_status(200);
    assert_eq!(before["enrolled"], false);
    assert_eq!(before["required"], false);

    let enrolment = client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
    let secret = enrolment["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let url = enrolment["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Paranimo:"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert!(url.contains("issuer=Paranimo"), "{url}");

    let totp = authenticator(secret);
    client
        .post_json("/api/mfa/confirm", &json!({ "code": wrong_code(&totp) }))
        .await
        .expect_error(422, "invalid_code");
    assert_eq!(
        client.get("/api/mfa").await.expect_status(200)["enrolled"],
        false
    );

    let confirmed = client
        .post_json("/api/mfa/confirm", &json!({ "code": code_at(&totp, 0) }))
        .await
        .expect_status(200);
    let codes = recovery_codes(&confirmed);
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
        assert!(
            code.chars()
                .all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
        );
    }
    let after = client.get("/api/mfa").await.expect_status(200);
    assert_eq!(after["enrolled"], true);
    assert_eq!(after["recovery_codes_left"], 10);

    // A confirmed factor is not replaced by starting again.
    client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_error(422, "validation");
    client
        .post_json("/api/mfa/confirm", &json!({ "code": code_at(&totp, 1) }))
        .await
        .expect_error(422, "validation");
}

/// A code is accepted once; the same code again is refused, and so is the code that
/// confirmed enrolment.
#[actix_web::test]
async fn a_code_cannot_be_replayed() {
    let app = TestApp::spawn().await;
    let (client, totp, _) = enrolled_client(&app).await;
    let user = user_id(&client);

    let confirming = code_at(&totp, 0);
    let fresh = code_at(&totp, 1);
    let check = |code: String| {
        let pool = app.pool.clone();
        async move { mfa::verify_login_factor(&pool, user, &code).await.unwrap() }
    };
    assert_eq!(check(confirming).await, FactorCheck::Rejected);
    assert_eq!(check(fresh.clone()).await, FactorCheck::Accepted);
    assert_eq!(check(fresh).await, FactorCheck::Rejected);
}

/// A code from three steps ago and a made-up code are refused; a user with no factor is
/// told apart from a wrong code.
#[actix_web::test]
async fn old_and_wrong_codes_are_rejected() {
    let app = TestApp::spawn().await;
    let (client, totp, _) = enrolled_client(&app).await;
    let user = user_id(&client);

    let recent: Vec<String> = (-1..=2).map(|s| code_at(&totp, s)).collect();
    let old = (3..)
        .map(|s| code_at(&totp, -s))
        .find(|c| !recent.contains(c))
        .unwrap();
    for code in [old, wrong_code(&totp), "".into(), "not a code".into()] {
        assert_eq!(
            mfa::verify_login_factor(&app.pool, user, &code)
                .await
                .unwrap(),
            FactorCheck::Rejected,
            "{code:?}"
        );
    }

    let other = app.new_client().await;
    let check = mfa::verify_login_factor(&app.pool, user_id(&other), "123456").await;
    assert_eq!(check.unwrap(), FactorCheck::NotEnrolled);
    assert!(!mfa::is_enrolled(&app.pool, user_id(&other)).await.unwrap());
    assert!(mfa::is_enrolled(&app.pool, user).await.unwrap());
}

/// Each recovery code works exactly once, however it is typed, and the count goes down.
#[actix_web::test]
async fn a_recovery_code_works_once_and_only_once() {
    let app = TestApp::spawn().await;
    let (client, _, codes) = enrolled_client(&app).await;
    let user = user_id(&client);

    let verify = |code: String| {
        let pool = app.pool.clone();
        async move { mfa::verify_login_factor(&pool, user, &code).await.unwrap() }
    };
    assert_eq!(verify(codes[0].clone()).await, FactorCheck::Accepted);
    assert_eq!(verify(codes[0].clone()).await, FactorCheck::Rejected);
    let typed_loosely = codes[1].to_lowercase().replace('-', " ");
    assert_eq!(verify(typed_loosely).await, FactorCheck::Accepted);
    assert_eq!(verify(codes[1].clone()).await, FactorCheck::Rejected);
    assert_eq!(
        client.get("/api/mfa").await.expect_status(200)["recovery_codes_left"],
        8
    );

    // Another account's code is no good here.
    let (_, _, other_codes) = enrolled_client(&app).await;
    assert_eq!(verify(other_codes[0].clone()).await, FactorCheck::Rejected);
}

/// Two sign-ins racing with the same fresh code: exactly one gets in. Likewise for a
/// recovery code. Repeated over several accounts to give the race a chance to show.
#[actix_web::test]
async fn two_concurrent_uses_of_one_code_let_exactly_one_in() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let (client, totp, codes) = enrolled_client(&app).await;
        let user = user_id(&client);
        for code in [code_at(&totp, 1), codes[0].clone()] {
            let (a, b) = tokio::join!(
                mfa::verify_login_factor(&app.pool, user, &code),
                mfa::verify_login_factor(&app.pool, user, &code),
            );
            let outcomes = [a.unwrap(), b.unwrap()];
            let accepted = outcomes
                .iter()
                .filter(|o| **o == FactorCheck::Accepted)
                .count();
            assert_eq!(accepted, 1, "{outcomes:?} for {code}");
        }
    }
}

/// Turning the factor off needs a valid code; afterwards nothing of it is left and the user
/// may enrol again.
#[actix_web::test]
async fn disabling_needs_a_valid_code_and_removes_everything() {
    let app = TestApp::spawn().await;
    let (client, totp, _) = enrolled_client(&app).await;
    let user = user_id(&client);

    client
        .post_json("/api/mfa/disable", &json!({ "code": wrong_code(&totp) }))
        .await
        .expect_error(422, "invalid_code");
    assert!(mfa::is_enrolled(&app.pool, user).await.unwrap());
    client
        .post_json("/api/mfa/disable", &json!({ "code": code_at(&totp, 1) }))
        .await
        .expect_status(204);

    let status = client.get("/api/mfa").await.expect_status(200);
    assert_eq!(status["enrolled"], false);
    assert_eq!(status["recovery_codes_left"], 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        mfa::verify_login_factor(&app.pool, user, &code_at(&totp, 1))
            .await
            .unwrap(),
        FactorCheck::NotEnrolled
    );
    client
        .post_json("/api/mfa/disable", &json!({ "code": code_at(&totp, 1) }))
        .await
        .expect_error(422, "validation");
    client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
}

/// New recovery codes need a valid code; the old ones stop working and the new ones work.
#[actix_web::test]
async fn regenerating_recovery_codes_retires_the_old_ones() {
    let app = TestApp::spawn().await;
    let (client, totp, old_codes) = enrolled_client(&app).await;
    let user = user_id(&client);

    client
        .post_json(
            "/api/mfa/recovery-codes",
            &json!({ "code": wrong_code(&totp) }),
        )
        .await
        .expect_error(422, "invalid_code");
    let body = client
        .post_json(
            "/api/mfa/recovery-codes",
            &json!({ "code": code_at(&totp, 1) }),
        )
        .await
        .expect_status(200);
    let new_codes = recovery_codes(&body);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));

    let verify = |code: String| {
        let pool = app.pool.clone();
        async move { mfa::verify_login_factor(&pool, user, &code).await.unwrap() }
    };
    assert_eq!(verify(old_codes[2].clone()).await, FactorCheck::Rejected);
    assert_eq!(verify(new_codes[2].clone()).await, FactorCheck::Accepted);
}

/// The operator function makes a staff account that must use MFA and cannot turn it off,
/// refuses a weak password and a taken email, and is audited.
#[actix_web::test]
async fn operator_made_staff_must_use_mfa_and_cannot_disable_it() {
    let app = TestApp::spawn().await;
    let staff = admin::create_operator_account(
        &app.pool,
        "ops@example.test",
        OperatorRole::Staff,
        PASSWORD.into(),
    )
    .await
    .expect("staff account created");

    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
        .bind(staff.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "staff");
    assert!(
        mfa::mfa_required(&app.pool, staff, Role::Staff)
            .await
            .unwrap()
    );
    assert!(
        admin::mfa_required(&app.pool, staff, Role::Admin)
            .await
            .unwrap()
    );
    // The account itself is marked, not only its role.
    assert!(
        mfa::mfa_required(&app.pool, staff, Role::Client)
            .await
            .unwrap()
    );
    assert!(!mfa::is_enrolled(&app.pool, staff).await.unwrap());

    let client = app.new_client().await;
    let client_id = user_id(&client);
    assert!(
        !mfa::mfa_required(&app.pool, client_id, Role::Client)
            .await
            .unwrap()
    );

    let totp = enrol_directly(&app, staff).await;
    let refused = mfa::disable(&app.pool, staff, Role::Staff, &code_at(&totp, 1)).await;
    assert!(matches!(refused, Err(MfaError::Required)), "{refused:?}");
    assert!(mfa::is_enrolled(&app.pool, staff).await.unwrap());

    let taken = admin::create_operator_account(
        &app.pool,
        "OPS@example.test",
        OperatorRole::Admin,
        PASSWORD.into(),
    )
    .await;
    assert!(taken.is_err());
    let weak = admin::create_operator_account(
        &app.pool,
        "ops2@example.test",
        OperatorRole::Admin,
        "short".into(),
    )
    .await;
    assert!(weak.is_err());
    let operators: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE role IN ('staff', 'admin')")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(operators, 1);

    let actions = audit_actions(&app, staff).await;
    assert_eq!(
        actions.first().map(String::as_str),
        Some("user.created_by_operator")
    );
}

/// `paranimo create-staff` reads the password from the environment or standard input,
/// prints only the new id, and refuses a role public sign-up could give.
#[actix_web::test]
async fn the_create_staff_command_makes_accounts() {
    let database = TestDatabase::create().await;
    let command = |email: &str, role: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paranimo"));
        c.args(["create-staff", "--email", email, "--role", role])
            .env("DATABASE_URL", &database.url)
            .env("RUST_LOG", "warn")
            .env_remove("PARANIMO_NEW_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let printed_id = |output: &std::process::Output| -> uuid::Uuid {
        assert!(
            output.status.success(),
            "create-staff failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("stdout is exactly the new id")
    };

    let from_env = command("admin@example.test", "admin")
        .env("PARANIMO_NEW_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("command runs");
    let admin_id = printed_id(&from_env);

    let mut child = command("staff@example.test", "staff")
        .stdin(Stdio::piped())
        .spawn()
        .expect("command runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{PASSWORD}").unwrap();
    drop(stdin);
    let staff_id = printed_id(&child.wait_with_output().unwrap());

    let refused = command("client@example.test", "client")
        .env("PARANIMO_NEW_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("command runs");
    assert!(!refused.status.success());

    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let rows: Vec<(uuid::Uuid, String, bool)> =
        sqlx::query_as("SELECT id, role, mfa_required FROM users ORDER BY email")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (admin_id, "admin".to_owned(), true),
            (staff_id, "staff".to_owned(), true)
        ]
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'user.created_by_operator'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);

    // The password works: it was hashed, not stored, and matches what was given.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(staff_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(
        paranimo::auth::verify_password(PASSWORD.into(), Some(hash))
            .await
            .unwrap()
    );
    pool.close().await;
}

/// Every MFA step lands in the hash-chained audit log, and no detail carries the secret or
/// a recovery code.
#[actix_web::test]
async fn every_mfa_event_is_audited_without_secrets() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let user = user_id(&client);
    let enrolment = client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let totp = authenticator(&secret);
    let codes = recovery_codes(
        &client
            .post_json("/api/mfa/confirm", &json!({ "code": code_at(&totp, 0) }))
            .await
            .expect_status(200),
    );
    let verify = |code: String| {
        let pool = app.pool.clone();
        async move { mfa::verify_login_factor(&pool, user, &code).await.unwrap() }
    };
    verify(code_at(&totp, 1)).await;
    verify(wrong_code(&totp)).await;
    verify(codes[0].clone()).await;
    client
        .post_json("/api/mfa/disable", &json!({ "code": codes[1] }))
        .await
        .expect_status(204);

    let actions = audit_actions(&app, user).await;
    for expected in [
        "mfa.enrolment_started",
        "mfa.enabled",
        "mfa.verified",
        "mfa.failed",
        "mfa.recovery_code_used",
        "mfa.disabled",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "no {expected} in {actions:?}"
        );
    }

    let details: Vec<Value> = sqlx::query_scalar("SELECT detail FROM audit_events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let all = serde_json::to_string(&details).unwrap();
    assert!(!all.contains(&secret));
    for code in &codes {
        assert!(!all.contains(code.as_str()) && !all.contains(&code.replace('-', "")));
    }
    let report = crate::helpers::seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.unsealed, 0);
}
