//! Where one device's files live: everything under `--home DIR` (or `CNSPRCY_HOME`), or
//! the XDG locations.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The variable that plays `--home`.
pub const HOME_VARIABLE: &str = "CNSPRCY_HOME";
const APP_DIR: &str = "cnsprcy";

/// The files of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The optional TOML configuration.
    pub config_file: PathBuf,
    /// The handler directory.
    pub handlers_dir: PathBuf,
    /// Keys, roster and store (mode 0700).
    pub data_dir: PathBuf,
    /// The control socket (mode 0600).
    pub socket: PathBuf,
}

impl Paths {
    /// Everything under `home`.
    pub fn under(home: &Path) -> Self {
        Self {
            config_file: home.join("config.toml"),
            handlers_dir: home.join("handlers"),
            data_dir: home.join("data"),
            socket: home.join("cnspr.sock"),
        }
    }

    /// `--home` if given, else `CNSPRCY_HOME`, else the XDG locations.
    pub fn resolve(home: Option<&Path>) -> io::Result<Self> {
        if let Some(home) = home {
            return Ok(Self::under(home));
        }
        if let Some(home) = std::env::var_os(HOME_VARIABLE).filter(|h| !h.is_empty()) {
            return Ok(Self::under(Path::new(&home)));
        }
        let user_home = || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| io::Error::other("neither HOME nor --home nor CNSPRCY_HOME is set"))
        };
        let xdg = |variable: &str, fallback: &str| -> io::Result<PathBuf> {
            match std::env::var_os(variable).filter(|v| !v.is_empty()) {
                Some(dir) => Ok(PathBuf::from(dir)),
                None => Ok(user_home()?.join(fallback)),
            }
        };
        let config_dir = xdg("XDG_CONFIG_HOME", ".config")?.join(APP_DIR);
        let data_dir = xdg("XDG_DATA_HOME", ".local/share")?.join(APP_DIR);
        let socket = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(runtime) => PathBuf::from(runtime).join(APP_DIR).join("cnspr.sock"),
            None => data_dir.join("cnspr.sock"),
        };
        Ok(Self {
            config_file: config_dir.join("config.toml"),
            handlers_dir: config_dir.join("handlers"),
            data_dir,
            socket,
        })
    }

    /// Creates the data directory (mode 0700) and the socket's directory.
    pub fn create_dirs(&self) -> io::Result<()> {
        create_private(&self.data_dir)?;
        // The data directory holds the secret key: tighten it even if it existed.
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))?;
        if let Some(parent) = self.socket.parent() {
            create_private(parent)?;
        }
        Ok(())
    }
}

/// Creates `dir` and its missing parents readable by the owner only.
fn create_private(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_puts_everything_under_one_directory() {
        let paths = Paths::under(Path::new("/tmp/device-a"));
        assert_eq!(paths.config_file, Path::new("/tmp/device-a/config.toml"));
        assert_eq!(paths.data_dir, Path::new("/tmp/device-a/data"));
        assert_eq!(paths.socket, Path::new("/tmp/device-a/cnspr.sock"));
        assert_eq!(paths.handlers_dir, Path::new("/tmp/device-a/handlers"));
    }
}
