//! Builds the whole application from settings. `main` and the integration tests call the
//! same [`Application::build`], so tests exercise exactly what production runs.

use crate::adapters::Stores;
use crate::bus::RedisBus;
use crate::config::Settings;
use crate::state::AppState;
use crate::store::{self, PgStore};
use crate::telemetry::RequestSpan;
use crate::{http, ws};
use actix_files::{Files, NamedFile};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

/// Connections the kernel queues before the server accepts them. The default (128) overflows
/// when hundreds of browsers reconnect at once, each retry then costing a second.
const LISTEN_BACKLOG: u32 = 2048;

/// Blocking threads per worker. Password hashing runs there and takes 19 MiB each, so this
/// bounds that memory (the default, 512, let a burst of sign-ins hold hundreds of MiB).
const MAX_BLOCKING_THREADS_PER_WORKER: usize = 4;

/// How long a graceful stop waits for open requests; websockets are closed, not waited for.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// The mail sender; dropped (and so stopped) when the server stops.
    _mail_sender: crate::email::MailSender,
    /// The audit chain's sealer; likewise stopped with the server.
    _audit_sealer: store::audit::AuditSealer,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and Redis, binds the listener and wires
    /// the routes. Must run inside an actix system (`#[actix_web::main]` or `::test`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::crypto::warn_if_development_key(&settings.master_key);
        let pool = store::connect_and_migrate(&settings.database_url)
            .await
            .context("connecting to PostgreSQL")?;
        let redis = redis::Client::open(settings.redis_url.as_str()).context("REDIS_URL")?;
        let bus = RedisBus::start(redis, settings.redis_prefix.clone())
            .await
            .context("connecting to Redis")?;

        let bind = settings.bind;
        let workers = settings.workers;

        let mailer =
            crate::email::Mailer::new(&settings.mail_transport, settings.mail_from.clone())?;
        let mail_sender = crate::email::spawn_sender(pool.clone(), mailer);
        let audit_sealer = store::audit::spawn_sealer(pool.clone());

        let state = web::Data::new(AppState {
            stores: Stores {
                pg: PgStore { pool: pool.clone() },
                bus: bus.clone(),
            },
            pool,
            bus,
            mail: mail_sender.waker(),
            settings,
            calendars: Default::default(),
            mailboxes: Default::default(),
            rooms: Default::default(),
            connections: Default::default(),
        });

        // Close websockets of sessions revoked on any node.
        let revoked_in = std::sync::Arc::downgrade(&state.clone().into_inner());
        state.bus.on_revoked(Box::new(move |token_hash| {
            if let Some(state) = revoked_in.upgrade() {
                ws::close_session_sockets(&state, &token_hash, "signed out");
            }
        }));

        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let web_dir = app_state.settings.web_dir.clone();
            let index = web_dir.join("index.html");
            App::new()
                .wrap(from_fn(http::require_same_origin_writes))
                .wrap(http::security_headers(app_state.settings.production))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(app_state.clone())
                .configure(http::configure)
                .configure(ws::routes)
                .service(
                    Files::new("/", web_dir)
                        .index_file("index.html")
                        .default_handler(move |req: ServiceRequest| {
                            let index = index.clone();
                            async move {
                                let (req, _) = req.into_parts();
                                let file = NamedFile::open(index)?;
                                Ok(ServiceResponse::new(req.clone(), file.into_response(&req)))
                            }
                        }),
                )
        })
        .workers(workers)
        .backlog(LISTEN_BACKLOG)
        .on_connect(limit_unacknowledged_data)
        // Small frames (signalling, chat, events) must leave at once: without this, Nagle's
        // algorithm holds a frame until the previous one is acknowledged, which together
        // with delayed acknowledgements adds about 40 ms to a request-answer exchange.
        .tcp_nodelay(true)
        .worker_max_blocking_threads(MAX_BLOCKING_THREADS_PER_WORKER)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS)
        .bind(bind)
        .with_context(|| format!("binding {bind}"))?;
        // Port 0 in the settings asks the system for a free port: report the real one.
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .context("bound no address")?;
        let server = server.run();

        Ok(Self {
            port,
            server,
            state,
            _mail_sender: mail_sender,
            _audit_sealer: audit_sealer,
        })
    }

    /// The port actually bound (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state, for tests that inspect it.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the process is asked to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// How long data we sent may wait unacknowledged, or unsent behind a peer's closed receive
/// window, before the kernel drops the connection.
const UNACKNOWLEDGED_DATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sets `TCP_USER_TIMEOUT` on every accepted socket. A websocket client that stops reading is
/// closed by its connection actor ("too slow"), but actix-http keeps trying to write what is
/// already buffered and has no timeout of its own for that; without this, such a connection
/// would hold its descriptor and kernel buffers until the peer went away.
fn limit_unacknowledged_data(connection: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    let socket = socket2::SockRef::from(stream);
    if let Err(e) = socket.set_tcp_user_timeout(Some(UNACKNOWLEDGED_DATA_TIMEOUT)) {
        tracing::warn!(error = %e, "could not set TCP_USER_TIMEOUT on a connection");
    }
}
