//! Bytes on the wire: UTF-8 text as is (`message`, `value`, `stdout`) or, for any other
//! bytes, base64 in the field of the same name with `_b64` (`message_b64`, …). One of the
//! two fields is given, never both.

use data_encoding::BASE64;

text_or_base64!(
    /// A message, event or query payload, or a query's answer: `message` or `message_b64`.
    Message,
    "message",
    "message_b64"
);

text_or_base64!(
    /// A value of the store: `value` or `value_b64` (neither for a deleted key).
    StoredValue,
    "value",
    "value_b64"
);

text_or_base64!(
    /// What a handler wrote on its stdout: `stdout` or `stdout_b64`.
    Stdout,
    "stdout",
    "stdout_b64"
);

/// Why the two fields do not give bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Both fields are there.
    #[error("give {0} or {1}, not both")]
    Both(&'static str, &'static str),
    /// The base64 field is not base64.
    #[error("{field} is not base64: {reason}")]
    NotBase64 {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The two fields for `bytes`: text if they are UTF-8, else base64.
pub fn encode(bytes: Vec<u8>) -> (Option<String>, Option<String>) {
    match String::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(not_text) => (None, Some(BASE64.encode(not_text.as_bytes()))),
    }
}

/// The bytes the two fields (named `names`) carry, `None` if neither is there.
pub fn decode(
    text: Option<&str>,
    base64: Option<&str>,
    names: [&'static str; 2],
) -> Result<Option<Vec<u8>>, PayloadError> {
    match (text, base64) {
        (Some(_), Some(_)) => Err(PayloadError::Both(names[0], names[1])),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(base64)) => {
            BASE64
                .decode(base64.as_bytes())
                .map(Some)
                .map_err(|e| PayloadError::NotBase64 {
                    field: names[1],
                    reason: e.to_string(),
                })
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_other_bytes_go_base64() {
        let text = Message::new(b"hello".to_vec());
        assert_eq!(
            serde_json::to_value(&text).expect("serializes"),
            serde_json::json!({"message": "hello"})
        );
        assert_eq!(text.bytes(), Ok(Some(b"hello".to_vec())));
        let binary = StoredValue::new(vec![0, 1, 2, 0xff]);
        assert_eq!(
            serde_json::to_value(&binary).expect("serializes"),
            serde_json::json!({"value_b64": "AAEC/w=="})
        );
        assert_eq!(binary.bytes(), Ok(Some(vec![0, 1, 2, 0xff])));
        assert_eq!(Stdout::default().bytes(), Ok(None));
        assert_eq!(
            serde_json::to_value(Stdout::default()).expect("serializes"),
            serde_json::json!({})
        );
    }

    #[test]
    fn both_fields_or_bad_base64_are_refused() {
        let both: Message = serde_json::from_str(r#"{"message":"a","message_b64":"YQ=="}"#).expect("parses");
        assert_eq!(
            both.bytes().map_err(|e| e.to_string()),
            Err("give message or message_b64, not both".to_owned())
        );
        let bad: StoredValue = serde_json::from_str(r#"{"value_b64":"not base64!"}"#).expect("parses");
        assert!(matches!(
            bad.bytes(),
            Err(PayloadError::NotBase64 {
                field: "value_b64",
                ..
            })
        ));
    }
}
