//! Bytes from the command line: the argument, or standard input for `-` (or when the
//! argument is missing and stdin is allowed), sent as UTF-8 text (`message`, `value`) or,
//! for any other bytes, base64 (`message_b64`, `value_b64`).

use std::io::Read;

use data_encoding::BASE64;
use serde_json::{json, Value};

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

/// `{field: text}` or `{field_b64: base64}`.
pub fn field(name: &str, bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => json!({ name: text }),
        Err(not_text) => json!({ format!("{name}_b64"): BASE64.encode(not_text.as_bytes()) }),
    }
}

/// The parameters carrying a message.
pub fn params(argument: Option<&str>, stdin_when_missing: bool) -> Result<Value, CliError> {
    Ok(field("message", bytes(argument, stdin_when_missing)?))
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(STDIN_BYTES_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
    Ok(bytes)
}
