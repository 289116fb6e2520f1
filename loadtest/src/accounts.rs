//! Accounts and data made through Paranimo's public API, the way a person would: register,
//! follow the emailed confirmation link, fill in a therapist's profile and calendar, book.
//!
//! Mail is read from the folder the server writes when started with
//! `MAIL_TRANSPORT=folder:<dir>`. What was made is kept in a JSON cache (`--accounts-cache`)
//! so that runs against the same database skip the set-up; cached sessions are checked with
//! `GET /api/me` and signed in again when they have expired.

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The password of every load account: long and unguessable enough for the strength check.
pub const PASSWORD: &str = "harbour velvet cinnamon kestrel 93";

/// How long to wait for a confirmation mail to appear in the folder.
const MAIL_WAIT: Duration = Duration::from_secs(60);

/// One signed-in account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    pub role: String,
    pub user_id: String,
    /// `paranimo_session=…`, ready for a `Cookie` header.
    pub cookie: String,
}

/// A therapist and a client with one booking between them (chat and signalling).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pair {
    pub therapist: Account,
    pub client: Account,
    pub booking_id: String,
}

/// Everything made so far against one server's database.
#[derive(Default, Serialize, Deserialize)]
struct Cache {
    origin: String,
    clients: Vec<Account>,
    therapists: Vec<Account>,
    pairs: Vec<Pair>,
}

/// A reply: status and JSON body (or the text as a JSON string).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub cookie: Option<String>,
}

/// Paranimo's HTTP API as one caller sees it: our Origin on every request and, behind
/// `TRUSTED_PROXIES=127.0.0.1`, a distinct `X-Forwarded-For` per account so the
/// per-address throttles see many people rather than one.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub origin: String,
}

impl Api {
    pub fn new(base: &str, origin: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base: base.to_owned(),
            origin: origin.to_owned(),
        })
    }

    /// Sends a request as `cookie` (when given) from the documentation address `address`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        address: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Origin", &self.origin);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        if let Some(address) = address {
            request = request.header("X-Forwarded-For", address);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("request to {path}"))?;
        let status = response.status().as_u16();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("paranimo_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned());
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply {
            status,
            body,
            cookie,
        })
    }

    pub async fn get(&self, path: &str, cookie: &str) -> anyhow::Result<Reply> {
        self.call(reqwest::Method::GET, path, Some(cookie), None, None)
            .await
    }

    pub async fn post(&self, path: &str, cookie: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call(reqwest::Method::POST, path, Some(cookie), None, Some(body))
            .await
    }

    pub async fn put(&self, path: &str, cookie: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call(reqwest::Method::PUT, path, Some(cookie), None, Some(body))
            .await
    }
}

/// A weekly pattern offering hourly 50-minute slots every day, all day (London time).
/// `variant` moves the end by a minute: the slots stay the same, but it is a change the
/// server announces as `availability.changed`.
pub fn all_week(variant: bool) -> Value {
    let end = if variant { "23:58" } else { "23:59" };
    let rules: Vec<Value> = (1..=7)
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": end }))
        .collect();
    json!({ "timezone": "Europe/London", "rules": rules })
}

/// Undoes quoted-printable soft line breaks and `=3D`, which is all a link needs.
pub fn decode_soft_breaks(text: &str) -> String {
    text.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The confirmation token in a mail body, if it holds a `verify-email` link.
pub fn confirmation_token(body: &str) -> Option<String> {
    let body = decode_soft_breaks(body);
    let at = body.find("verify-email?token=")? + "verify-email?token=".len();
    let token: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The recipient of a mail, from its `To:` header (lower-cased).
pub fn recipient(mail: &str) -> Option<String> {
    let headers = mail.split("\r\n\r\n").next().unwrap_or(mail);
    let line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))?;
    let value = line[3..].trim();
    let address = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    Some(address.trim().to_ascii_lowercase())
}

/// The confirmation tokens found so far in the mail folder, by recipient.
struct MailIndex {
    dir: PathBuf,
    seen: HashSet<PathBuf>,
    tokens: HashMap<String, String>,
}

impl MailIndex {
    /// Reads the mails that arrived since the last scan.
    fn scan(&mut self) -> anyhow::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.dir.display())),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_mail = path.extension().is_some_and(|e| e == "eml")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_mail || self.seen.contains(&path) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            self.seen.insert(path);
            if let (Some(to), Some(token)) = (recipient(&text), confirmation_token(&text)) {
                self.tokens.insert(to, token);
            }
        }
        Ok(())
    }
}

/// Makes and keeps the accounts the scenarios need.
pub struct Setup {
    api: Api,
    mail: Option<Mutex<MailIndex>>,
    cache_path: Option<PathBuf>,
    cache: Mutex<Cache>,
    concurrency: usize,
    /// Makes emails and forwarded addresses unique to this run.
    nonce: String,
    counter: AtomicU64,
}

impl Setup {
    pub fn new(
        api: Api,
        mail_dir: Option<&Path>,
        cache_path: Option<&Path>,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let mut cache = match cache_path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an accounts cache", path.display()))?
            }
            _ => Cache::default(),
        };
        if !cache.origin.is_empty() && cache.origin != api.origin {
            eprintln!(
                "accounts cache was made for {}; checking its sessions against {}",
                cache.origin, api.origin
            );
        }
        cache.origin = api.origin.clone();
        let nonce = format!("{:x}", uuid::Uuid::new_v4().as_u128() as u32);
        let mail = mail_dir.map(|dir| {
            Mutex::new(MailIndex {
                dir: dir.to_owned(),
                seen: HashSet::new(),
                tokens: HashMap::new(),
            })
        });
        Ok(Self {
            api,
            mail,
            cache_path: cache_path.map(Path::to_owned),
            cache: Mutex::new(cache),
            concurrency: concurrency.max(1),
            nonce,
            counter: AtomicU64::new(0),
        })
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// A fresh address from the IPv6 documentation range (2001:db8::/32), never routed:
    /// only a header value, so each account has its own throttling counters.
    fn next_address(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let run = u32::from_str_radix(&self.nonce, 16).unwrap_or(0);
        format!("2001:db8:{:x}:{:x}::{:x}", run >> 16, run & 0xffff, n + 1)
    }

    async fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.cache_path else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&*self.cache.lock().await)?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    /// `n` signed-in clients.
    pub async fn clients(&self, n: usize) -> anyhow::Result<Vec<Account>> {
        let cached = self.cache.lock().await.clients.clone();
        let mut kept = self.still_valid(cached, n).await;
        let missing = n.saturating_sub(kept.len());
        let mut failure = None;
        if missing > 0 {
            eprintln!("creating {missing} client accounts…");
            let (made, failed) = self
                .make_many(missing, |s| Box::pin(s.register("client")))
                .await;
            kept.extend(made);
            failure = failed;
        }
        {
            let mut cache = self.cache.lock().await;
            cache.clients = merge(&kept, &cache.clients, n);
        }
        self.save().await?;
        keep_or_fail(kept, n, failure)
    }

    /// `n` therapists with a profile and an all-week calendar.
    pub async fn therapists(&self, n: usize) -> anyhow::Result<Vec<Account>> {
        let cached = self.cache.lock().await.therapists.clone();
        let mut kept = self.still_valid(cached, n).await;
        let missing = n.saturating_sub(kept.len());
        let mut failure = None;
        if missing > 0 {
            eprintln!("creating {missing} therapist accounts…");
            let (made, failed) = self.make_many(missing, |s| Box::pin(s.therapist())).await;
            kept.extend(made);
            failure = failed;
        }
        {
            let mut cache = self.cache.lock().await;
            cache.therapists = merge(&kept, &cache.therapists, n);
        }
        self.save().await?;
        keep_or_fail(kept, n, failure)
    }

    /// `n` therapist–client pairs with a booking each, about 50 days ahead so the booking
    /// (and its room, with `ROOM_OPENS_MINUTES_BEFORE=100000`) stays usable for weeks.
    pub async fn pairs(&self, n: usize) -> anyhow::Result<Vec<Pair>> {
        let cached: Vec<Pair> = self
            .cache
            .lock()
            .await
            .pairs
            .iter()
            .take(n)
            .cloned()
            .collect();
        let mut kept = Vec::new();
        for pair in cached {
            let both = self
                .still_valid(vec![pair.therapist.clone(), pair.client.clone()], 2)
                .await;
            if let [therapist, client] = &both[..] {
                kept.push(Pair {
                    therapist: therapist.clone(),
                    client: client.clone(),
                    booking_id: pair.booking_id.clone(),
                });
            }
        }
        let missing = n.saturating_sub(kept.len());
        let mut failure = None;
        if missing > 0 {
            eprintln!("creating {missing} therapist–client pairs with a booking…");
            let (made, failed) = self.make_many(missing, |s| Box::pin(s.pair())).await;
            kept.extend(made);
            failure = failed;
        }
        {
            let mut cache = self.cache.lock().await;
            let others: Vec<Pair> = cache
                .pairs
                .iter()
                .filter(|p| !kept.iter().any(|k| k.booking_id == p.booking_id))
                .cloned()
                .collect();
            cache.pairs = kept.iter().cloned().chain(others).collect();
        }
        self.save().await?;
        keep_or_fail(kept, n, failure)
    }

    /// Runs `make` `n` times with bounded concurrency. Returns what was made and the first
    /// failure: the callers cache what was made before failing, so that a large set-up (200
    /// rooms are 400 accounts) interrupted by one refusal is not all made again next time.
    async fn make_many<T, F>(&self, n: usize, make: F) -> (Vec<T>, Option<anyhow::Error>)
    where
        F: for<'a> Fn(
            &'a Self,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'a>,
        >,
    {
        let started = Instant::now();
        let results: Vec<anyhow::Result<T>> = stream::iter(0..n)
            .map(|_| make(self))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut made = Vec::with_capacity(n);
        let mut failure = None;
        for result in results {
            match result {
                Ok(item) => made.push(item),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        eprintln!(
            "  … {} of {n} made in {:.1} s",
            made.len(),
            started.elapsed().as_secs_f64()
        );
        (made, failure)
    }

    /// The first `n` cached accounts whose session still works or that can sign in again.
    async fn still_valid(&self, cached: Vec<Account>, n: usize) -> Vec<Account> {
        let checks = stream::iter(cached.into_iter().take(n))
            .map(|account| async move {
                let me = self.api.get("/api/me", &account.cookie).await.ok()?;
                if me.status == 200 {
                    return Some(account);
                }
                self.login(&account).await.ok()
            })
            .buffered(self.concurrency * 4)
            .collect::<Vec<_>>()
            .await;
        checks.into_iter().flatten().collect()
    }

    async fn login(&self, account: &Account) -> anyhow::Result<Account> {
        let body = json!({ "email": account.email, "password": PASSWORD });
        let address = self.next_address();
        let reply = self
            .api
            .call(
                reqwest::Method::POST,
                "/api/auth/login",
                None,
                Some(&address),
                Some(&body),
            )
            .await?;
        match (reply.status, reply.cookie) {
            (200, Some(cookie)) => Ok(Account {
                cookie,
                ..account.clone()
            }),
            (status, _) => bail!(
                "sign-in of a cached account failed: {status} {}",
                reply.body
            ),
        }
    }

    /// Registers an account and follows its confirmation link.
    async fn register(&self, role: &str) -> anyhow::Result<Account> {
        let n = self.counter.load(Ordering::Relaxed);
        let email = format!(
            "load-{role}-{}-{n}-{}@example.test",
            self.nonce,
            uuid::Uuid::new_v4().simple()
        );
        let address = self.next_address();
        let body = json!({
            "email": email, "password": PASSWORD, "role": role, "adult": true,
            "display_name": format!("Load {role} {n}"),
        });
        let reply = self
            .api
            .call(
                reqwest::Method::POST,
                "/api/auth/register",
                None,
                Some(&address),
                Some(&body),
            )
            .await?;
        if reply.status != 202 {
            bail!(
                "registration answered {} {} (was the server started with \
                 TRUSTED_PROXIES=127.0.0.1?)",
                reply.status,
                reply.body
            );
        }

        let token = self.wait_for_token(&email).await?;
        let reply = self
            .api
            .call(
                reqwest::Method::POST,
                "/api/auth/verify-email",
                None,
                Some(&address),
                Some(&json!({ "token": token })),
            )
            .await?;
        let (200, Some(cookie)) = (reply.status, reply.cookie) else {
            bail!("confirming {email} failed: {} {}", reply.status, reply.body);
        };
        let user_id = reply.body["user"]["id"]
            .as_str()
            .context("verify-email returned no user id")?
            .to_owned();
        Ok(Account {
            email,
            role: role.to_owned(),
            user_id,
            cookie,
        })
    }

    async fn wait_for_token(&self, email: &str) -> anyhow::Result<String> {
        let Some(mail) = &self.mail else {
            bail!(
                "registering accounts needs --mail-dir (the server's MAIL_TRANSPORT=folder:<dir>)"
            );
        };
        let deadline = Instant::now() + MAIL_WAIT;
        let key = email.to_ascii_lowercase();
        loop {
            {
                let mut index = mail.lock().await;
                if let Some(token) = index.tokens.remove(&key) {
                    return Ok(token);
                }
                index.scan()?;
                if let Some(token) = index.tokens.remove(&key) {
                    return Ok(token);
                }
            }
            if Instant::now() > deadline {
                bail!("no confirmation mail for {email} within {MAIL_WAIT:?} in --mail-dir");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A therapist with a profile and the all-week calendar.
    async fn therapist(&self) -> anyhow::Result<Account> {
        let account = self.register("therapist").await?;
        let profile = json!({
            "full_name": "Dr Load Test", "professional_body": "BACP",
            "membership_number": "BACP-000000", "bio": "Made by the load generator.",
            "fee_pence": 6000, "session_minutes": 50, "timezone": "Europe/London",
        });
        let reply = self
            .api
            .put("/api/therapists/me/profile", &account.cookie, &profile)
            .await?;
        if reply.status != 200 {
            bail!("therapist profile refused: {} {}", reply.status, reply.body);
        }
        let reply = self
            .api
            .put(
                "/api/therapists/me/availability",
                &account.cookie,
                &all_week(false),
            )
            .await?;
        if reply.status != 200 {
            bail!("availability refused: {} {}", reply.status, reply.body);
        }
        Ok(account)
    }

    async fn pair(&self) -> anyhow::Result<Pair> {
        let therapist = self.therapist().await?;
        let client = self.register("client").await?;
        let from = chrono::Utc::now() + chrono::Duration::days(50);
        let slots = free_slots(&self.api, &client.cookie, &therapist.user_id, from, 1).await?;
        let start = slots.first().context("no free slot 50 days ahead")?;
        let body = json!({ "therapist_id": therapist.user_id, "start": start });
        let reply = self
            .api
            .post("/api/bookings", &client.cookie, &body)
            .await?;
        if reply.status != 201 {
            bail!("booking for a pair failed: {} {}", reply.status, reply.body);
        }
        let booking_id = reply.body["id"].as_str().context("booking id")?.to_owned();
        Ok(Pair {
            therapist,
            client,
            booking_id,
        })
    }
}

/// The first `n` of `kept`, or the set-up's failure when it left fewer than `n`.
fn keep_or_fail<T>(
    mut kept: Vec<T>,
    n: usize,
    failure: Option<anyhow::Error>,
) -> anyhow::Result<Vec<T>> {
    if let Some(e) = failure
        && kept.len() < n
    {
        return Err(e.context(format!(
            "set-up made {} of {n} (those are kept in the accounts cache)",
            kept.len()
        )));
    }
    kept.truncate(n);
    Ok(kept)
}

/// The start times of a therapist's free slots in `[from, from + days)`.
pub async fn free_slots(
    api: &Api,
    cookie: &str,
    therapist: &str,
    from: chrono::DateTime<chrono::Utc>,
    days: i64,
) -> anyhow::Result<Vec<String>> {
    let to = from + chrono::Duration::days(days);
    let path = format!(
        "/api/therapists/{therapist}/slots?from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let reply = api.get(&path, cookie).await?;
    if reply.status != 200 {
        bail!("slots answered {} {}", reply.status, reply.body);
    }
    Ok(reply.body["slots"]
        .as_array()
        .map(|slots| {
            slots
                .iter()
                .filter_map(|s| s["start"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The accounts in `kept` first (refreshed cookies), then the cached ones past the first
/// `checked` (those were checked: the ones not kept no longer work and are dropped).
fn merge(kept: &[Account], cached: &[Account], checked: usize) -> Vec<Account> {
    let ids: HashSet<&str> = kept.iter().map(|a| a.user_id.as_str()).collect();
    kept.iter()
        .cloned()
        .chain(
            cached
                .iter()
                .skip(checked)
                .filter(|a| !ids.contains(a.user_id.as_str()))
                .cloned(),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A confirmation link survives quoted-printable soft breaks and `=3D`.
    #[test]
    fn tokens_are_found_through_quoted_printable() {
        let plain = "Hello\r\n\r\nhttp://127.0.0.1:8080/#/verify-email?token=Ab_c-9xyz\r\nBye";
        assert_eq!(confirmation_token(plain).as_deref(), Some("Ab_c-9xyz"));
        let qp = "http://127.0.0.1:8080/#/verify-email?token=3DAb_c=\r\n-9xyz more";
        assert_eq!(confirmation_token(qp).as_deref(), Some("Ab_c-9xyz"));
        let reset = "http://x/#/reset-password?token=abc";
        assert_eq!(confirmation_token(reset), None);
    }

    /// The recipient comes from the To header, bracketed or not.
    #[test]
    fn recipients_come_from_the_to_header() {
        let mail = "From: Paranimo <no-reply@p.test>\r\nTo: Load@Example.test\r\n\r\nTo: not@this";
        assert_eq!(recipient(mail).as_deref(), Some("load@example.test"));
        let mail = "to: \"A\" <a@b.test>\r\nSubject: x\r\n\r\nbody";
        assert_eq!(recipient(mail).as_deref(), Some("a@b.test"));
    }

    /// A set-up that made enough despite a failure goes on; one that made too few fails.
    #[test]
    fn set_up_failures_matter_only_when_short() {
        let kept = keep_or_fail(vec![1, 2, 3], 2, Some(anyhow::anyhow!("refused"))).unwrap();
        assert_eq!(kept, vec![1, 2]);
        let short = keep_or_fail(vec![1], 2, Some(anyhow::anyhow!("refused")));
        assert!(format!("{:#}", short.unwrap_err()).contains("made 1 of 2"));
        assert_eq!(keep_or_fail(vec![1], 2, None).unwrap(), vec![1]);
    }

    /// The two calendar variants differ, so each PUT is a real change.
    #[test]
    fn calendar_variants_differ() {
        assert_ne!(all_week(false), all_week(true));
        assert_eq!(all_week(true)["rules"].as_array().unwrap().len(), 7);
    }
}
