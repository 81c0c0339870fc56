//! A message from the command line: the argument, or standard input for `-` (or when the
//! argument is missing and stdin is allowed), as JSON-RPC `message` (UTF-8) or
//! `message_b64` (any other bytes).

use std::io::Read;

use data_encoding::BASE64;
use serde_json::{json, Value};

use crate::CliError;

/// Stdin read at most (the daemon's limit is lower; more is refused there plainly).
const STDIN_BYTES_MAX: u64 = 64 << 20;

/// The parameters carrying the message.
pub fn params(argument: Option<&str>, stdin_when_missing: bool) -> Result<Value, CliError> {
    let bytes = match argument {
        Some("-") => read_stdin()?,
        Some(text) => text.as_bytes().to_vec(),
        None if stdin_when_missing => read_stdin()?,
        None => Vec::new(),
    };
    Ok(match String::from_utf8(bytes) {
        Ok(text) => json!({ "message": text }),
        Err(not_text) => json!({ "message_b64": BASE64.encode(not_text.as_bytes()) }),
    })
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(STDIN_BYTES_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
    Ok(bytes)
}
