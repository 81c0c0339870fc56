//! Bytes from the command line: the argument, or standard input for `-` (or when the
//! argument is missing and stdin is allowed). The API's payload types send them as UTF-8
//! text or base64 (`cnspr_runtime::api::payload`).

use std::io::Read;

use crate::CliError;

/// Stdin read at most (the daemon's limit is lower; more is refused there plainly).
const STDIN_BYTES_MAX: u64 = 64 << 20;

/// The bytes an argument stands for.
pub fn bytes(argument: Option<&str>, stdin_when_missing: bool) -> Result<Vec<u8>, CliError> {
    match argument {
        Some("-") => read_stdin(),
        Some(text) => Ok(text.as_bytes().to_vec()),
        None if stdin_when_missing => read_stdin(),
        None => Ok(Vec::new()),
    }
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(STDIN_BYTES_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
    Ok(bytes)
}
