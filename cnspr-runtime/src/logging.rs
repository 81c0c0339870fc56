//! Logs through `tracing` to standard error: the filter comes from `RUST_LOG` if set,
//! else from the configuration's `log`, and follows the configuration on reload.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

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
        let journal = stderr_is_the_journal();
        let plain = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(!journal && std::io::IsTerminal::is_terminal(&std::io::stderr()));
        // The journal stamps every line itself: a second timestamp is noise there.
        let output = if journal {
            plain.without_time().boxed()
        } else {
            plain.boxed()
        };
        let installed = tracing_subscriber::registry()
            .with(layer)
            .with(output)
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

/// Whether standard error goes to systemd's journal: systemd says so in `JOURNAL_STREAM`
/// (`DEVICE:INODE` of the stream it connected), which must still be this stderr.
fn stderr_is_the_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    journal_stream_matches(&stream.to_string_lossy(), stat.st_dev, stat.st_ino)
}

fn journal_stream_matches(stream: &str, device: u64, inode: u64) -> bool {
    let mut parts = stream.split(':').map(str::parse::<u64>);
    matches!((parts.next(), parts.next(), parts.next()), (Some(Ok(d)), Some(Ok(i)), None) if d == device && i == inode)
}

#[cfg(test)]
mod tests {
    use super::journal_stream_matches;

    #[test]
    fn the_journal_is_recognised_only_by_its_own_stream() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(
            !journal_stream_matches("8:12345", 8, 12346),
            "stderr was redirected since"
        );
        assert!(!journal_stream_matches("8", 8, 12345));
        assert!(!journal_stream_matches("8:12345:1", 8, 12345));
        assert!(!journal_stream_matches("x:y", 8, 12345));
    }
}
