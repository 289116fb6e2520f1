use crate::helpers::{Client, TEST_PASSWORD, TestDatabase, redis_url};
use crate::mfa::{authenticator, code_at};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A full sign-up, confirmation, sign-in with a second factor, password reset and sign-in
/// again, with the server logging at debug level for every crate: the log holds none of the
/// passwords, tokens, codes, secrets or email addresses involved.
#[actix_web::test]
async fn no_secret_or_address_reaches_the_log() {
    let database = TestDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = std::env::temp_dir().join(format!("paranimo-log-{}.txt", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_paranimo"))
        .arg("serve")
        .env("DATABASE_URL", &database.url)
        .env("REDIS_URL", redis_url())
        .env(
            "REDIS_PREFIX",
            format!("test-{}:", uuid::Uuid::new_v4().simple()),
        )
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("HTTP_WORKERS", "1")
        .env("RUST_LOG", "debug")
        .env(
            "MAIL_TRANSPORT",
            format!(
                "folder:{}",
                std::env::temp_dir().join("paranimo-log-mail").display()
            ),
        )
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "server never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut secrets: Vec<String> = vec![TEST_PASSWORD.into()];
    let email = format!("log-{}@example.test", uuid::Uuid::new_v4().simple());
    secrets.push(email.clone());
    let mut client = Client::new(&base);
    client.mail = Some(sqlx::PgPool::connect_lazy(&database.url).unwrap());
    client.register("client", Some(&email)).await;
    secrets.push(
        client
            .cookie
            .clone()
            .unwrap()
            .trim_start_matches("paranimo_session=")
            .into(),
    );
    let (_, confirmation) = client.last_mail(&email).await;
    secrets.push(
        confirmation
            .split("token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .into(),
    );

    let enrolment = client
        .post_json("/api/mfa/enrol", &json!({ "password": TEST_PASSWORD }))
        .await
        .expect_status(200);
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    secrets.push(secret.clone());
    let phone = authenticator(&secret);
    let codes = client
        .post_json("/api/mfa/confirm", &json!({ "code": code_at(&phone, 0) }))
        .await
        .expect_status(200);
    secrets.extend(
        codes["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned()),
    );

    let first = client
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": TEST_PASSWORD }),
        )
        .await;
    let challenge = first.expect_status(200)["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(challenge.clone());
    let code = code_at(&phone, 1);
    secrets.push(code.clone());
    let second = client
        .post_json(
            "/api/auth/login/mfa",
            &json!({ "challenge": challenge, "code": code }),
        )
        .await;
    secrets.push(
        second
            .set_cookie
            .clone()
            .unwrap()
            .trim_start_matches("paranimo_session=")
            .into(),
    );

    client
        .post_json("/api/auth/password-reset", &json!({ "email": email }))
        .await
        .expect_status(202);
    let reset_token = client.mailed_token_about(&email, "Reset").await;
    secrets.push(reset_token.clone());
    let new_password = "copper lantern drift 5521";
    secrets.push(new_password.into());
    let reset = json!({ "token": reset_token, "new_password": new_password });
    client
        .post_json("/api/auth/password-reset/confirm", &reset)
        .await
        .expect_status(204);
    client
        .post_json(
            "/api/auth/login",
            &json!({ "email": email, "password": "wrong and wrong 77" }),
        )
        .await;

    let _ = server.kill();
    let _ = server.wait();
    let output = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        output.lines().count() > 20,
        "the server logged at debug level:\n{output}"
    );
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "the log contains a secret ({} chars)",
            secret.len()
        );
    }
    assert!(
        !output.to_lowercase().contains("example.test"),
        "the log contains an email address"
    );
}
