//! Registration with email verification, sign-in (with throttling and a second factor),
//! sign-out, password change and reset, and "who am I".
//!
//! Answers never reveal whether an email is registered: registration and reset requests
//! always answer 202, and a wrong password and an unknown email get the same 401 after the
//! same amount of work.

use crate::auth::{self, CurrentUser};
use crate::email::{self, Email};
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::email_tokens::{self, Purpose};
use crate::store::{sessions, users};
use crate::throttle::{self, Throttle};
use actix_web::{HttpRequest, HttpResponse, web};
use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask for 12).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password accepted: long enough for any passphrase, short enough to hash cheaply.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Lowest zxcvbn score accepted (0–4): 3 means "safely unguessable" for an online attack
/// that is already throttled.
const MIN_PASSWORD_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// A sign-in attempt before confirming mails a fresh link at most this often.
const VERIFICATION_RESEND_MINUTES: i64 = 10;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/verify-email", web::post().to(verify_email))
        .route("/auth/login", web::post().to(login))
        .route("/auth/login/mfa", web::post().to(login_second_factor))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/password", web::post().to(change_password))
        .route(
            "/auth/password-reset",
            web::post().to(request_password_reset),
        )
        .route(
            "/auth/password-reset/confirm",
            web::post().to(confirm_password_reset),
        )
        .route("/me", web::get().to(me));
}

/// Which kind of account public sign-up may create.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum SignUpRole {
    Client,
    Therapist,
}

/// A registration form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub role: SignUpRole,
    /// Must be true: the person confirms they are 18 or over.
    pub adult: bool,
    /// A name or pseudonym shown to the other party; a random one when absent.
    pub display_name: Option<String>,
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The second step of a sign-in with multi-factor authentication.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// From the first step's answer.
    pub challenge: String,
    /// A current authenticator code or an unused recovery code.
    pub code: String,
}

/// A single-use token from an emailed link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// A password change by a signed-in user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// A password reset request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

/// A new password, with the token from the reset link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmRequest {
    pub token: String,
    pub new_password: String,
}

/// The signed-in account.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub display_name: String,
}

/// Wraps the account in `{"user": …}`.
#[derive(Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

/// The first step of a sign-in that needs a second factor: no session yet.
#[derive(Serialize, ToSchema)]
pub struct SecondFactorNeeded {
    pub mfa_required: bool,
    /// Send back with the code to `/api/auth/login/mfa`; valid for five minutes.
    pub challenge: String,
}

/// The answer to requests that must not reveal whether an account exists.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
}

impl From<&users::UserRecord> for UserEnvelope {
    fn from(u: &users::UserRecord) -> Self {
        UserEnvelope {
            user: UserView {
                id: u.id,
                email: u.email.clone(),
                role: u.role,
                display_name: u.display_name.clone(),
            },
        }
    }
}

fn normalise_email(email: &str) -> Result<String, ApiError> {
    crate::http::input::email(email)
}

/// NIST SP 800-63B in spirit: a length floor, no composition rules, and a refusal of
/// passwords that are common or guessable from the person's own details.
fn check_password(password: &str, email: &str, display_name: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::Validation(
            "the password must be at least 12 characters".into(),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::Validation(
            "the password must be at most 256 characters".into(),
        ));
    }
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let personal = [
        email,
        local,
        domain,
        display_name,
        "paranimo",
        "therapy",
        "therapist",
    ];
    let estimate = zxcvbn::zxcvbn(password, &personal);
    if estimate.score() < MIN_PASSWORD_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
            .unwrap_or_default();
        return Err(ApiError::Validation(format!(
            "that password is too easy to guess{hint}; a few unrelated words work well"
        )));
    }
    Ok(())
}

fn display_name(requested: Option<String>, role: Role) -> Result<String, ApiError> {
    match requested
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        Some(name) => crate::http::input::single_line("the display name", &name, 60),
        None => {
            let kind = if role == Role::Therapist {
                "Therapist"
            } else {
                "Client"
            };
            Ok(format!("{kind} {}", &auth::random_token()[..6]))
        }
    }
}

fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
}

/// Audits an event about `user` inside the caller's transaction.
async fn audit_user(
    tx: &mut PgConnection,
    user: Option<UserId>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let event = AuditEvent {
        actor: user.map(|u| u.0),
        action,
        object_type: "user",
        object_id: user.map(|u| u.to_string()).unwrap_or_default(),
        detail,
    };
    audit::record(tx, event).await
}

/// Starts a session for `user` inside the caller's transaction and returns its token.
async fn start_session(
    tx: &mut PgConnection,
    user: UserId,
    req: &HttpRequest,
) -> Result<String, sqlx::Error> {
    let token = auth::random_token();
    sessions::insert(tx, &token, user.0, user_agent(req)).await?;
    Ok(token)
}

fn signed_in(state: &AppState, token: String, user: &users::UserRecord) -> HttpResponse {
    HttpResponse::Ok()
        .cookie(auth::session_cookie(token, state.settings.production))
        .json(UserEnvelope::from(user))
}

fn link(state: &AppState, page: &str, token: &str) -> String {
    format!("{}/#/{page}?token={token}", state.settings.public_origin)
}

/// Queues the address-confirmation mail for `user` inside the caller's transaction.
async fn send_verification(
    state: &AppState,
    tx: &mut PgConnection,
    user: &users::UserRecord,
) -> Result<(), sqlx::Error> {
    let token = email_tokens::issue(tx, user.id, Purpose::VerifyEmail).await?;
    let mail = Email {
        to: user.email.clone(),
        subject: "Confirm your email address for Paranimo".into(),
        body_text: format!(
            "Welcome to Paranimo.\n\nTo confirm this is your address, open this link within \
             48 hours:\n\n{}\n\nIf you did not sign up, ignore this message.\n",
            link(state, "verify-email", &token)
        ),
    };
    email::enqueue(tx, &mail).await?;
    Ok(())
}

/// Creates an account and emails a confirmation link. Always 202, registered or not: an
/// address already registered gets a mail saying so instead, so the answer (and its timing,
/// one password hash either way) reveals nothing.
#[utoipa::path(post, path = "/api/auth/register", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !body.adult {
        return Err(ApiError::Validation(
            "you must be 18 or over to use Paranimo".into(),
        ));
    }
    let email = normalise_email(&body.email)?;
    let role = match body.role {
        SignUpRole::Client => Role::Client,
        SignUpRole::Therapist => Role::Therapist,
    };
    let name = display_name(body.display_name, role)?;
    check_password(&body.password, &email, &name)?;
    throttle_by_address(&state, &req, "register").await?;

    let user = users::UserRecord {
        id: UserId::new_random(),
        email,
        role,
        display_name: name,
    };
    let hash = auth::hash_password(body.password).await?;

    let mut tx = state.pool.begin().await?;
    match users::insert(&mut tx, &user, &hash).await {
        Ok(()) => {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            send_verification(&state, &mut tx, &user).await?;
            audit_user(
                &mut tx,
                Some(user.id),
                "user.registered",
                json!({ "role": role.as_str() }),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(role = role.as_str(), "registered; confirmation mail queued");
        }
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.code().as_deref() == Some("23505")) =>
        {
            drop(tx);
            notify_existing_account(&state, &user.email).await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "check_your_email",
    }))
}

/// Tells the owner of an already registered address that someone tried to sign up with it.
async fn notify_existing_account(state: &AppState, address: &str) -> Result<(), ApiError> {
    let mut tx = state.pool.begin().await?;
    let existing = users::credentials_by_email(&state.pool, address).await?;
    let mail = Email {
        to: address.to_owned(),
        subject: "Someone tried to register with your email address".into(),
        body_text: format!(
            "Someone (perhaps you) tried to create a Paranimo account with this address, \
             which already has one.\n\nSign in: {origin}/#/login\nForgotten your password? \
             {origin}/#/reset-password\n\nIf it was not you, you need do nothing.\n",
            origin = state.settings.public_origin
        ),
    };
    email::enqueue(&mut tx, &mail).await?;
    let id = existing.map(|c| c.user.id);
    audit_user(&mut tx, id, "user.registration_repeated", json!({})).await?;
    tx.commit().await?;
    Ok(())
}

/// Counts requests of one kind per client address, refusing past the allowance.
async fn throttle_by_address(
    state: &AppState,
    req: &HttpRequest,
    kind: &str,
) -> Result<(), ApiError> {
    let address = throttle::client_address(req, &state.settings);
    let prefix = &state.settings.redis_prefix;
    let counter = Throttle::for_address(state.bus.connection(), prefix, kind, address);
    let wait = counter
        .wait_seconds()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if wait > 0 {
        return Err(ApiError::RateLimited {
            retry_after_seconds: wait,
        });
    }
    counter
        .record_failure()
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Confirms the address from the emailed link and signs the person in.
#[utoipa::path(post, path = "/api/auth/verify-email", request_body = TokenRequest,
    responses((status = 200, body = UserEnvelope), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn verify_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    let user_id = email_tokens::consume(&mut tx, &body.token, Purpose::VerifyEmail)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    // A confirmation link signs in only the first time an address is confirmed: once it is,
    // leftover links (sent at each early sign-in attempt) must not act as password-less
    // logins, so they are refused and voided.
    if users::email_verified(&mut tx, user.id).await? {
        email_tokens::revoke_all(&mut tx, user.id, Some(Purpose::VerifyEmail)).await?;
        tx.commit().await?;
        return Err(ApiError::InvalidToken);
    }
    users::mark_email_verified(&mut tx, user.id).await?;
    email_tokens::revoke_all(&mut tx, user.id, Some(Purpose::VerifyEmail)).await?;
    let token = start_session(&mut tx, user.id, &req).await?;
    audit_user(&mut tx, Some(user.id), "user.email_verified", json!({})).await?;
    tx.commit().await?;
    Ok(signed_in(&state, token, &user))
}

/// Signs in with email and password. With a second factor enrolled, answers a challenge
/// instead of a session. Throttled per account and per address.
#[utoipa::path(post, path = "/api/auth/login", request_body = LoginRequest,
    responses((status = 200, description = "signed in ({user}), or a second factor is \
               needed ({mfa_required, challenge}; no session yet)",
               content((UserEnvelope = "application/json"),
                       (SecondFactorNeeded = "application/json"))),
              (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let address = throttle::client_address(&req, &state.settings);
    let prefix = &state.settings.redis_prefix;
    let counter = Throttle::for_login(state.bus.connection(), prefix, &body.email, address);

    // Refuse before any work while the account or the address owes a wait. Attempts made
    // while waiting count against the address only, so hammering lengthens the attacker's
    // own wait, not the account owner's.
    let wait = counter
        .wait_seconds()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if wait > 0 {
        counter
            .record_refused()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let mut conn = state.pool.acquire().await?;
        audit_user(&mut conn, None, "user.login_throttled", json!({})).await?;
        return Err(ApiError::RateLimited {
            retry_after_seconds: wait,
        });
    }

    // Verify even for an unknown email, against a decoy, so both take the same time.
    // Text no address can hold (NUL, other control characters) is simply an unknown account.
    let plausible = !body.email.chars().any(char::is_control);
    let found = match plausible {
        true => users::credentials_by_email(&state.pool, body.email.trim()).await?,
        false => None,
    };
    let stored = found.as_ref().map(|c| c.password_hash.clone());
    let valid = auth::verify_password(body.password.clone(), stored).await?;
    let Some(credentials) = found.filter(|_| valid) else {
        counter
            .record_failure()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let mut conn = state.pool.acquire().await?;
        audit_user(&mut conn, None, "user.login_failed", json!({})).await?;
        return Err(ApiError::InvalidCredentials);
    };
    counter
        .record_success()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let user = credentials.user;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));

    let mut tx = state.pool.begin().await?;
    if auth::needs_rehash(&credentials.password_hash) {
        let upgraded = auth::hash_password(body.password).await?;
        users::set_password_hash(&mut tx, user.id, &upgraded, false).await?;
        tracing::info!("password hash upgraded to current parameters");
    }
    if !credentials.email_verified {
        let window = chrono::Duration::minutes(VERIFICATION_RESEND_MINUTES);
        if !email_tokens::sent_recently(&mut tx, user.id, Purpose::VerifyEmail, window).await? {
            send_verification(&state, &mut tx, &user).await?;
        }
        tx.commit().await?;
        return Err(ApiError::EmailUnverified);
    }
    if crate::mfa::mfa_required(&state.pool, user.id, user.role).await?
        || crate::mfa::is_enrolled(&state.pool, user.id).await?
    {
        tx.commit().await?;
        let challenge = crate::auth::issue_mfa_challenge(&state, user.id).await?;
        return Ok(HttpResponse::Ok().json(SecondFactorNeeded {
            mfa_required: true,
            challenge,
        }));
    }

    let token = start_session(&mut tx, user.id, &req).await?;
    audit_user(
        &mut tx,
        Some(user.id),
        "user.logged_in",
        json!({ "mfa": false }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!("signed in");
    Ok(signed_in(&state, token, &user))
}

/// Completes a sign-in with an authenticator code or a recovery code.
#[utoipa::path(post, path = "/api/auth/login/mfa", request_body = SecondFactorRequest,
    responses((status = 200, body = UserEnvelope), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn login_second_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SecondFactorRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = crate::auth::redeem_mfa_challenge(&state, &body.challenge).await?;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let prefix = &state.settings.redis_prefix;
    let counter = Throttle::for_second_factor(state.bus.connection(), prefix, user_id);
    let wait = counter
        .wait_seconds()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if wait > 0 {
        return Err(ApiError::RateLimited {
            retry_after_seconds: wait,
        });
    }
    let check = crate::mfa::verify_login_factor(&state.pool, user_id, body.code.trim()).await?;
    if check != crate::mfa::FactorCheck::Accepted {
        counter
            .record_failure()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        return Err(ApiError::InvalidCredentials);
    }
    counter
        .record_success()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;

    let mut tx = state.pool.begin().await?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    let token = start_session(&mut tx, user.id, &req).await?;
    audit_user(
        &mut tx,
        Some(user.id),
        "user.logged_in",
        json!({ "mfa": true }),
    )
    .await?;
    tx.commit().await?;
    crate::auth::forget_mfa_challenge(&state, &body.challenge).await?;
    Ok(signed_in(&state, token, &user))
}

/// Ends this session and closes its open websockets on every node.
#[utoipa::path(post, path = "/api/auth/logout", responses((status = 204)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn logout(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    sessions::revoke(&mut tx, &current.token).await?;
    audit_user(&mut tx, Some(current.user.id), "user.logged_out", json!({})).await?;
    tx.commit().await?;

    state
        .sessions_revoked(vec![sessions::token_hash(&current.token)])
        .await;
    Ok(HttpResponse::NoContent()
        .cookie(auth::cleared_cookie(state.settings.production))
        .finish())
}

/// Changes the password: every other session is signed out, and this one gets a new token.
#[utoipa::path(post, path = "/api/auth/password", request_body = ChangePasswordRequest,
    responses((status = 200, body = UserEnvelope), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    current: CurrentUser,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = &current.user;
    check_password(&body.new_password, &user.email, &user.display_name)?;
    let mut conn = state.pool.acquire().await?;
    let stored = users::password_hash(&mut conn, user.id).await?;
    drop(conn);
    let check = async {
        match auth::verify_password(body.current_password, Some(stored)).await? {
            true => Ok(()),
            false => Err(ApiError::InvalidCredentials),
        }
    };
    let wrong = |e: &ApiError| matches!(e, ApiError::InvalidCredentials);
    crate::throttle::reauthenticate(&state, user.id, check, wrong).await?;

    let mut tx = state.pool.begin().await?;
    let ended = replace_password(
        &state,
        &mut tx,
        user,
        body.new_password,
        "user.password_changed",
    )
    .await?;
    let token = start_session(&mut tx, user.id, &req).await?;
    tx.commit().await?;

    state.sessions_revoked(ended).await;
    Ok(signed_in(&state, token, user))
}

/// Stores a new password inside the caller's transaction, ends every session of the account,
/// audits `action` and mails the owner a notice. Returns the ended sessions' hashes, to be
/// announced after commit.
async fn replace_password(
    state: &AppState,
    tx: &mut PgConnection,
    user: &users::UserRecord,
    new_password: String,
    action: &str,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let hash = auth::hash_password(new_password).await?;
    users::set_password_hash(tx, user.id, &hash, true).await?;
    let ended = sessions::revoke_all(tx, user.id, None).await?;
    // Any other reset or confirmation link in the mailbox dies with the old password.
    email_tokens::revoke_all(tx, user.id, None).await?;
    let detail = json!({ "sessions_ended": ended.len() });
    audit_user(tx, Some(user.id), action, detail).await?;
    email::enqueue(tx, &password_changed_mail(state, &user.email)).await?;
    Ok(ended)
}

fn password_changed_mail(state: &AppState, address: &str) -> Email {
    Email {
        to: address.to_owned(),
        subject: "Your Paranimo password was changed".into(),
        body_text: format!(
            "The password of your Paranimo account was just changed, and every device was \
             signed out.\n\nIf this was not you, reset your password now: \
             {}/#/reset-password\n",
            state.settings.public_origin
        ),
    }
}

/// Emails a reset link when the address has an account. Always 202.
#[utoipa::path(post, path = "/api/auth/password-reset", request_body = ResetRequest,
    responses((status = 202, body = Accepted), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    throttle_by_address(&state, &req, "reset").await?;

    // The lookup, link and mail happen after the answer, so its timing is the same whether
    // or not the address has an account.
    let email = body.into_inner().email;
    let span = tracing::Span::current();
    actix_web::rt::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = send_reset_link(&state, email.trim()).await {
                tracing::error!(error = %e, "could not prepare a password reset mail");
            }
        },
        span,
    ));
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "check_your_email",
    }))
}

/// Mails a reset link when the address has an account; does nothing otherwise.
async fn send_reset_link(state: &AppState, address: &str) -> Result<(), ApiError> {
    if address.chars().any(char::is_control) {
        return Ok(());
    }
    let Some(credentials) = users::credentials_by_email(&state.pool, address).await? else {
        return Ok(());
    };
    let user = credentials.user;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    let mut tx = state.pool.begin().await?;
    let token = email_tokens::issue(&mut tx, user.id, Purpose::ResetPassword).await?;
    let mail = Email {
        to: user.email.clone(),
        subject: "Reset your Paranimo password".into(),
        body_text: format!(
            "To choose a new password, open this link within 30 minutes:\n\n{}\n\n\
             Using it signs you out on every device. If you did not ask for this, \
             ignore this message.\n",
            link(state, "reset-password", &token)
        ),
    };
    email::enqueue(&mut tx, &mail).await?;
    audit_user(
        &mut tx,
        Some(user.id),
        "user.password_reset_requested",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    state.mail.wake();
    Ok(())
}

/// Sets a new password from a reset link (once), and signs the account out everywhere.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", request_body = ResetConfirmRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    body: web::Json<ResetConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut tx = state.pool.begin().await?;
    let user_id = email_tokens::consume(&mut tx, &body.token, Purpose::ResetPassword)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    check_password(&body.new_password, &user.email, &user.display_name)?;

    // Following the link proves the address, too.
    users::mark_email_verified(&mut tx, user.id).await?;
    let ended = replace_password(
        &state,
        &mut tx,
        &user,
        body.new_password,
        "user.password_reset",
    )
    .await?;
    tx.commit().await?;

    state.sessions_revoked(ended).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = UserEnvelope),
    (status = 401, body = ErrorBody)))]
pub async fn me(current: CurrentUser) -> web::Json<UserEnvelope> {
    web::Json(UserEnvelope::from(&current.user))
}
