//! The `cnspr` command: `cnspr serve` runs the daemon, every other command is a client of
//! its control socket. Placeholder until the daemon exists (issue "The daemon: runtime
//! shell, control socket, command line and pairing"): it says so and exits 1.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!(
        "cnspr {}: the daemon and its commands are not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::FAILURE
}
