//! Registration, sign-in, sign-out and "who am I".

use crate::auth::{self, CurrentUser};
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::{sessions, users};
use actix_web::{HttpRequest, HttpResponse, web};
use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask for 12).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password accepted: long enough for any passphrase, short enough to hash cheaply.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
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
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if !valid {
        return Err(ApiError::Validation("enter a valid email address".into()));
    }
    Ok(email.to_owned())
}

fn check_password(password: &str) -> Result<(), ApiError> {
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
    Ok(())
}

fn display_name(requested: Option<String>) -> Result<String, ApiError> {
    match requested
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        Some(name) if name.chars().count() > 60 => Err(ApiError::Validation(
            "the display name must be at most 60 characters".into(),
        )),
        Some(name) => Ok(name),
        None => Ok(format!("Client {}", &auth::random_token()[..6])),
    }
}

/// Creates an account and signs it in.
#[utoipa::path(post, path = "/api/auth/register", request_body = RegisterRequest,
    responses((status = 201, body = UserEnvelope), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
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
    check_password(&body.password)?;
    let role = match body.role {
        SignUpRole::Client => Role::Client,
        SignUpRole::Therapist => Role::Therapist,
    };
    let user = users::UserRecord {
        id: UserId::new_random(),
        email,
        role,
        display_name: display_name(body.display_name)?,
    };
    tracing::Span::current().record("user_id", tracing::field::display(user.id));

    let hash = auth::hash_password(body.password).await?;
    let token = auth::random_token();
    let mut tx = state.pool.begin().await?;
    if let Err(e) = users::insert(&mut tx, &user, &hash).await {
        let unique = e
            .as_database_error()
            .is_some_and(|d| d.code().as_deref() == Some("23505"));
        return Err(if unique {
            ApiError::EmailTaken
        } else {
            e.into()
        });
    }
    sessions::insert(&mut tx, &token, user.id.0, user_agent(&req)).await?;
    let event = AuditEvent {
        actor: Some(user.id.0),
        action: "user.registered",
        object_type: "user",
        object_id: user.id.to_string(),
        detail: json!({ "role": role.as_str() }),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    tracing::info!(role = role.as_str(), "registered");
    Ok(HttpResponse::Created()
        .cookie(auth::session_cookie(token, state.settings.production))
        .json(UserEnvelope::from(&user)))
}

fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
}

/// Signs in with email and password; always a new session token.
#[utoipa::path(post, path = "/api/auth/login", request_body = LoginRequest,
    responses((status = 200, body = UserEnvelope), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let found = users::credentials_by_email(&state.pool, body.email.trim()).await?;
    let stored = found.as_ref().map(|c| c.password_hash.clone());

    // Verify even for an unknown email, against a decoy, so both take the same time.
    let valid = auth::verify_password(body.password, stored).await?;
    let Some(credentials) = found.filter(|_| valid) else {
        let event = AuditEvent {
            actor: None,
            action: "user.login_failed",
            object_type: "user",
            object_id: String::new(),
            detail: json!({}),
        };
        audit::record_alone(&state.pool, event).await?;
        return Err(ApiError::InvalidCredentials);
    };

    let user = credentials.user;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    let token = auth::random_token();
    let mut tx = state.pool.begin().await?;
    sessions::insert(&mut tx, &token, user.id.0, user_agent(&req)).await?;
    let event = AuditEvent {
        actor: Some(user.id.0),
        action: "user.logged_in",
        object_type: "user",
        object_id: user.id.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    tracing::info!("signed in");
    Ok(HttpResponse::Ok()
        .cookie(auth::session_cookie(token, state.settings.production))
        .json(UserEnvelope::from(&user)))
}

/// Ends this session and closes its open websockets.
#[utoipa::path(post, path = "/api/auth/logout", responses((status = 204)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn logout(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    sessions::revoke(&mut tx, &current.token).await?;
    let event = AuditEvent {
        actor: Some(current.user.id.0),
        action: "user.logged_out",
        object_type: "user",
        object_id: current.user.id.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    crate::ws::close_session_sockets(&state, &current.token, "signed out");
    Ok(HttpResponse::NoContent()
        .cookie(auth::cleared_cookie(state.settings.production))
        .finish())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = UserEnvelope),
    (status = 401, body = ErrorBody)))]
pub async fn me(current: CurrentUser) -> web::Json<UserEnvelope> {
    web::Json(UserEnvelope::from(&current.user))
}
