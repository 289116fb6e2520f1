//! The test harness: the real server (built by the same `Application::build` as production)
//! on a free port, against a fresh PostgreSQL database and a private Redis key prefix, with a
//! small HTTP client and websocket client.

use futures_util::{SinkExt, StreamExt};
use paranimo::config::Settings;
use paranimo::email::{DEFAULT_FROM, MailTransport};
use paranimo::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

/// How long a test waits for an expected frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin URL tests create their databases from.
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis every test shares, each under its own key prefix.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("DATABASE_URL is a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A fresh, empty database, dropped when this value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("paranimo_test_{}", Uuid::new_v4().simple());
        let admin = admin_database_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("admin connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&admin, &name);
        Self { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a short-lived runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_database_url()).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Settings for a test server: a free port, its own database and Redis prefix.
pub fn test_settings(database_url: &str, redis_prefix: &str) -> Settings {
    Settings {
        database_url: database_url.to_owned(),
        redis_url: redis_url(),
        redis_prefix: redis_prefix.to_owned(),
        bind: "127.0.0.1:0".parse().expect("address"),
        public_origin: String::new(),
        web_dir: "web/dist".into(),
        production: false,
        room_opens_minutes_before: 10,
        stun_urls: vec![],
        turn_urls: vec![],
        turn_secret: None,
        workers: 2,
        // Mail goes to a folder of this test's own; tests that read mail point it at a sink.
        mail_transport: MailTransport::Folder(
            std::env::temp_dir().join(format!("paranimo-mail-{}", Uuid::new_v4().simple())),
        ),
        mail_from: DEFAULT_FROM.parse().expect("mailbox"),
        // Tests stand in for a proxy so they can speak from several client addresses.
        trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
        master_key: paranimo::crypto::generate_master_key(),
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    /// The server's shared state, for tests that drive the event bus directly.
    pub state: actix_web::web::Data<paranimo::state::AppState>,
    _database: TestDatabase,
}

impl TestApp {
    /// Starts a server with default test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after letting the test adjust its settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let database = TestDatabase::create().await;
        let prefix = format!("test-{}:", Uuid::new_v4().simple());
        let mut settings = test_settings(&database.url, &prefix);

        // The origin must name the port, which is known only after binding: bind first.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = listener.local_addr().expect("port").port();
        drop(listener);
        settings.bind = format!("127.0.0.1:{port}").parse().expect("address");
        settings.public_origin = format!("http://127.0.0.1:{port}");
        adjust(&mut settings);

        let app = Application::build(settings)
            .await
            .expect("application builds");
        let state = app.state();
        actix_web::rt::spawn(app.run_until_stopped());
        let pool = state.pool.clone();
        Self {
            address: format!("http://127.0.0.1:{port}"),
            pool,
            state,
            _database: database,
        }
    }

    /// A client with no session yet.
    pub fn client(&self) -> Client {
        let mut client = Client::new(&self.address);
        client.mail = Some(self.pool.clone());
        client
    }

    /// A registered, signed-in client account.
    pub async fn new_client(&self) -> Client {
        let mut c = self.client();
        c.register("client", None).await;
        c
    }

    /// A therapist and a client with a booking between them, on the client's chosen slot
    /// (`slot` indexes the free slots; negative counts from the end). Returns the booking id.
    pub async fn booked_pair(&self, slot: isize) -> (Client, Client, String) {
        let therapist = self.new_therapist().await;
        let client = self.new_client().await;
        let (slots, _) = client.slots(&therapist.id()).await;
        let index = if slot < 0 {
            slots.len() as isize + slot
        } else {
            slot
        } as usize;
        let booking = client.book(&therapist.id(), &slots[index]["start"]).await;
        let id = booking.expect_status(201)["id"]
            .as_str()
            .expect("booking id")
            .to_owned();
        (therapist, client, id)
    }

    /// A staff or admin account made by the operator command, signed in over HTTP with its
    /// password and one of the recovery codes handed over with it.
    pub async fn operator(&self, role: paranimo::admin::OperatorRole) -> Client {
        let email = format!("operator-{}@example.test", Uuid::new_v4().simple());
        let id = paranimo::admin::create_operator_account(
            &self.pool,
            &email,
            role,
            TEST_PASSWORD.into(),
        )
        .await
        .expect("operator account created");
        paranimo::mfa::begin_enrolment(&self.pool, id, &email)
            .await
            .expect("enrolment begins");
        let codes = paranimo::mfa::confirm_by_operator(&self.pool, id)
            .await
            .expect("confirmed");

        let mut client = self.client();
        let login = json!({ "email": email, "password": TEST_PASSWORD });
        let first = client
            .post_json("/api/auth/login", &login)
            .await
            .expect_status(200);
        let second = json!({ "challenge": first["challenge"], "code": codes[0] });
        let reply = client.post_json("/api/auth/login/mfa", &second).await;
        client.cookie = reply.set_cookie.clone();
        client.user = reply.expect_status(200)["user"].clone();
        client
    }

    /// A registered therapist with a profile and availability on every day, all day, so
    /// tests have slots whatever the time they run.
    pub async fn new_therapist(&self) -> Client {
        let mut t = self.client();
        t.register("therapist", None).await;
        t.put_json("/api/therapists/me/profile", &sample_profile())
            .await
            .expect_status(200);
        t.put_json("/api/therapists/me/availability", &all_week())
            .await
            .expect_status(200);
        t
    }
}

/// A complete, valid therapist profile.
pub fn sample_profile() -> Value {
    json!({
        "full_name": "Dr Test Therapist",
        "professional_body": "BACP",
        "membership_number": "BACP-123456",
        "bio": "Counsellor.",
        "fee_pence": 6000,
        "session_minutes": 50,
        "timezone": "Europe/London"
    })
}

/// Every day, 00:00 to 23:59 London time.
pub fn all_week() -> Value {
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": "23:59" }))
        .collect();
    json!({ "timezone": "Europe/London", "rules": rules })
}

/// A response with its status and body, for fluent assertions.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookie: Option<String>,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error response with this status and code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.body["error"]["code"], code,
            "unexpected error body: {}",
            self.body
        );
    }
}

/// An HTTP client acting as one person, carrying their session cookie and our Origin.
pub struct Client {
    pub base: String,
    /// The Origin header sent; the server's public origin.
    pub origin: String,
    pub http: reqwest::Client,
    pub cookie: Option<String>,
    pub user: Value,
    /// The database whose outbox holds this client's mail (to follow emailed links).
    pub mail: Option<PgPool>,
    /// The address this client appears to come from (the test server trusts loopback as
    /// a proxy), so throttling per address does not lump every test client together.
    pub address: String,
}

/// The password every test account uses: long and unguessable, so the strength check passes.
pub const TEST_PASSWORD: &str = "lantern mosaic quietly orbit 47";

impl Client {
    pub fn new(base: &str) -> Self {
        let random = Uuid::new_v4().as_bytes().to_owned();
        Self {
            base: base.to_owned(),
            origin: base.to_owned(),
            http: reqwest::Client::new(),
            cookie: None,
            user: Value::Null,
            mail: None,
            address: format!("10.{}.{}.{}", random[0], random[1], random[2]),
        }
    }

    /// The newest mail sent to `to`, read from the outbox: (subject, body).
    pub async fn last_mail(&self, to: &str) -> (String, String) {
        let pool = self.mail.as_ref().expect("client made by TestApp::client");
        sqlx::query_as(
            "SELECT subject, body_text FROM email_outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(to)
        .fetch_one(pool)
        .await
        .expect("a mail was queued")
    }

    /// The token of the newest mail to `to` whose subject contains `subject`, waiting for it
    /// to be queued (some mails are prepared after the request is answered).
    pub async fn mailed_token_about(&self, to: &str, subject: &str) -> String {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            let (latest, body) = self.last_mail(to).await;
            if latest.contains(subject) {
                let start = body.find("token=").expect("mail holds a link") + "token=".len();
                return body[start..]
                    .split_whitespace()
                    .next()
                    .expect("token")
                    .to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail about {subject:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The token of the newest link mailed to `to`.
    pub async fn mailed_token(&self, to: &str) -> String {
        let (_, body) = self.last_mail(to).await;
        let start = body.find("token=").expect("mail holds a link") + "token=".len();
        body[start..]
            .split_whitespace()
            .next()
            .expect("token")
            .to_owned()
    }

    /// This user's id.
    pub fn id(&self) -> String {
        self.user["id"].as_str().expect("signed in").to_owned()
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let mut builder = builder
            .header("Origin", &self.origin)
            .header("X-Forwarded-For", &self.address);
        if let Some(cookie) = &self.cookie {
            builder = builder.header("Cookie", cookie);
        }
        let response = builder.send().await.expect("request sent");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned());
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            set_cookie,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Registers a fresh account with this role, follows the emailed confirmation link, and
    /// keeps the session that starts.
    pub async fn register(&mut self, role: &str, email: Option<&str>) -> Value {
        let email = email
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}@example.test", Uuid::new_v4()));
        let body = json!({
            "email": email,
            "password": TEST_PASSWORD,
            "role": role,
            "adult": true,
            "display_name": format!("{role} person"),
        });
        let reply = self.post_json("/api/auth/register", &body).await;
        assert_eq!(reply.expect_status(202)["status"], "check_your_email");

        let token = self.mailed_token(&email).await;
        let verified = self
            .post_json("/api/auth/verify-email", &json!({ "token": token }))
            .await;
        self.cookie = verified.set_cookie.clone();
        self.user = verified.expect_status(200)["user"].clone();
        self.user.clone()
    }

    /// The free slots of a therapist and the snapshot's sequence number.
    pub async fn slots(&self, therapist: &str) -> (Vec<Value>, u64) {
        let body = self
            .get(&format!("/api/therapists/{therapist}/slots"))
            .await
            .expect_status(200);
        let slots = body["slots"].as_array().expect("slots").clone();
        (slots, body["seq"].as_u64().expect("seq"))
    }

    /// Books the slot starting at `start`.
    pub async fn book(&self, therapist: &str, start: &Value) -> Reply {
        self.post_json(
            "/api/bookings",
            &json!({ "therapist_id": therapist, "start": start }),
        )
        .await
    }

    /// Opens a websocket as this user and reads the `hello` frame.
    pub async fn websocket(&self) -> Ws {
        Ws::connect(&self.base, self.cookie.as_deref(), Some(&self.origin))
            .await
            .expect("websocket opens")
    }
}

/// A websocket client speaking the protocol's JSON frames.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// Connects with the given cookie and Origin; returns the HTTP status on refusal.
    pub async fn connect(
        base: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, u16> {
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("request");
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("Cookie", cookie.parse().expect("header"));
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().expect("header"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => {
                let mut ws = Ws { stream };
                let hello = ws.next().await;
                assert_eq!(hello["type"], "hello", "first frame is hello: {hello}");
                Ok(ws)
            }
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("websocket failed: {e}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    /// Sends several frames in one write, as a client that batches its frames would.
    pub async fn send_together(&mut self, frames: Vec<Value>) {
        for frame in frames {
            self.stream
                .feed(Message::text(frame.to_string()))
                .await
                .expect("frame queued");
        }
        self.stream.flush().await.expect("frames sent");
    }

    /// Sends a websocket-level ping (not the protocol's `ping` frame).
    pub async fn ping_socket(&mut self, payload: Vec<u8>) {
        self.stream
            .send(Message::Ping(payload.into()))
            .await
            .expect("ping sent");
    }

    /// Reads until nothing arrives for `quiet`, counting websocket-level pongs.
    pub async fn count_pongs(&mut self, quiet: Duration) -> usize {
        let mut pongs = 0;
        while let Ok(Some(message)) = tokio::time::timeout(quiet, self.stream.next()).await {
            match message {
                Ok(Message::Pong(_)) => pongs += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        pongs
    }

    pub async fn send_raw(&mut self, text: String) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("frame sent");
    }

    /// The next text frame, or a panic after [`FRAME_TIMEOUT`].
    pub async fn next(&mut self) -> Value {
        match self.try_next(FRAME_TIMEOUT).await {
            Some(frame) => frame,
            None => panic!("no frame within {FRAME_TIMEOUT:?}"),
        }
    }

    /// The next text frame within `wait`, or `None`. `closed` frames come back as
    /// `{"type":"socket_closed"}`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).ok(),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    return Some(json!({ "type": "socket_closed", "code": code }));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(json!({ "type": "socket_closed", "code": 0 })),
            }
        }
    }

    /// Reads frames until one satisfies `wanted`; panics after [`FRAME_TIMEOUT`].
    pub async fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) if frame["type"] == "socket_closed" => {
                    panic!("socket closed waiting for {what}")
                }
                Some(_) => continue,
                None => panic!("no {what} within {FRAME_TIMEOUT:?}"),
            }
        }
    }

    /// Subscribes and waits for the confirmation; returns the topic's sequence number.
    pub async fn subscribe(&mut self, topic: &str, since: Option<u64>) -> u64 {
        let mut frame = json!({ "type": "subscribe", "topic": topic });
        if let Some(since) = since {
            frame["since"] = json!(since);
        }
        self.send(frame).await;
        let confirmed = self
            .expect("subscribed", |f| {
                f["type"] == "subscribed" && f["topic"] == topic
            })
            .await;
        confirmed["seq"].as_u64().expect("seq")
    }

    /// Waits for an event of `kind` on any topic.
    pub async fn event(&mut self, kind: &str) -> Value {
        self.expect(kind, |f| f["type"] == "event" && f["event"]["kind"] == kind)
            .await
    }

    /// Sends a command and waits for its ack or error (same id).
    pub async fn command(&mut self, mut frame: Value) -> Value {
        let id = frame
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        frame["id"] = json!(id);
        self.send(frame).await;
        self.expect("ack or error", |f| {
            (f["type"] == "ack" || f["type"] == "error") && f["id"] == id.as_str()
        })
        .await
    }

    /// True if no event of `kind` arrives within `wait`.
    pub async fn no_event(&mut self, kind: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                None => return true,
                Some(f) if f["type"] == "event" && f["event"]["kind"] == kind => return false,
                Some(_) => continue,
            }
        }
    }
}

/// Seals whatever audit rows are pending, then verifies the whole chain.
pub async fn seal_and_verify(pool: &PgPool) -> paranimo::store::audit::ChainReport {
    use paranimo::store::audit;
    audit::seal_pending(pool).await.expect("sealing works");
    audit::verify_chain(pool).await.expect("verification runs")
}
