//! Logs through `tracing` to standard error: the filter comes from `RUST_LOG` if set,
//! else from the configuration's `log`, and follows the configuration on reload.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the log filter of the running daemon.
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
}

fn filter(configured: &str) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::try_new(configured).unwrap_or_else(|_| EnvFilter::new("info")),
    }
}

impl LogControl {
    /// Installs the logger (once per process; later calls change nothing).
    pub fn init(configured: &str) -> Self {
        let (layer, handle) = reload::Layer::new(filter(configured));
        let installed = tracing_subscriber::registry()
            .with(layer)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init()
            .is_ok();
        Self {
            handle: installed.then_some(handle),
        }
    }

    /// Applies a new configured filter (unless `RUST_LOG` rules).
    pub fn set(&self, configured: &str) {
        if let Some(handle) = &self.handle {
            let _ = handle.reload(filter(configured));
        }
    }
}
