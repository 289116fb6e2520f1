//! The `paranimo` command: serve the product, apply migrations, or load demo data.

use clap::{Parser, Subcommand};
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
