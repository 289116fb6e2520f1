//! The `paranimo` command: serve the product, apply migrations, or load demo data.

use clap::{Parser, Subcommand};
use paranimo::admin;
use paranimo::config::Settings;
use paranimo::startup::Application;
use paranimo::{demo, store, telemetry};

/// Paranimo server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log one JSON object per line instead of text.
    #[arg(long, global = true, env = "LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve HTTP and websockets.
    Serve {
        /// Load demo therapists, a client and a booking when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Create a staff or admin account, which must then use multi-factor authentication, and
    /// print its id. The password is read from PARANIMO_NEW_PASSWORD or else from one line of
    /// standard input; never from the command line, which other users can see.
    CreateStaff {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// The account's role.
        #[arg(long, value_enum)]
        role: admin::OperatorRole,
    },
    /// Check the audit trail's hash chain and count the rows not sealed yet (many, or an old
    /// one, mean no server's sealer is running). Fails when a sealed row does not match.
    VerifyAudit {
        /// Seal pending rows first, as a running server's sealer would.
        #[arg(long)]
        seal: bool,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_json);
    let settings = Settings::from_env()?;

    match cli.command {
        Command::Migrate => {
            store::connect_and_migrate(&settings.database_url).await?;
            tracing::info!("migrations applied");
        }
        Command::CreateStaff { email, role } => {
            let password = admin::read_new_password()?;
            let pool = store::connect_and_migrate(&settings.database_url).await?;
            let id = admin::create_operator_account(&pool, &email, role, password).await?;
            let enrolment = paranimo::mfa::begin_enrolment(&pool, id, &email).await?;
            let codes = paranimo::mfa::confirm_by_operator(&pool, id).await?;
            // Standard output carries only the id, for scripts; the second factor goes to the
            // operator's terminal once, to hand over with the account.
            println!("{id}");
            eprintln!(
                "Second factor (shown once; give it to the account's owner):\n  \
                 authenticator: {}\n  recovery codes: {}",
                enrolment.otpauth_url,
                codes.join(" ")
            );
        }
        Command::VerifyAudit { seal } => {
            let pool = store::connect_and_migrate(&settings.database_url).await?;
            if seal {
                let sealed = store::audit::seal_pending(&pool).await?;
                tracing::info!(sealed, "audit rows sealed");
            }
            let report = store::audit::verify_chain(&pool).await?;
            let oldest = report.oldest_unsealed_at.map(|at| at.to_rfc3339());
            println!(
                "sealed: {}\nunsealed: {}\noldest unsealed: {}",
                report.sealed,
                report.unsealed,
                oldest.as_deref().unwrap_or("none")
            );
            if let Some(id) = report.first_broken {
                anyhow::bail!("the audit chain is broken at audit_events row {id}");
            }
            println!("chain: intact");
        }
        Command::Serve { demo: with_demo } => {
            let public_origin = settings.public_origin.clone();
            let app = Application::build(settings).await?;
            if with_demo {
                demo::load_if_empty(&app.state()).await?;
            }
            tracing::info!(port = app.port(), origin = %public_origin, "serving");
            eprintln!("\nParanimo is running at {public_origin}\n");
            if with_demo {
                eprintln!("{}", demo::LOGIN_HELP);
            }
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}
