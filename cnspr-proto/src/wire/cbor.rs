//! Bounded CBOR for structured message bodies.
//!
//! Peers are untrusted, so decoding caps input size and nesting depth before
//! serde sees the data, and insists on exactly one value.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Deepest nesting accepted (as counted by ciborium: each array, map, struct
/// or enum level uses one).
pub const MAX_CBOR_DEPTH: usize = 16;

/// Why a CBOR body was rejected or could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// Input exceeds the caller's limit; nothing was parsed.
    #[error("CBOR body is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Input ended in the middle of a value.
    #[error("CBOR body ends in the middle of a value")]
    Truncated,
    /// Malformed CBOR.
    #[error("malformed CBOR at byte {0}")]
    Syntax(usize),
    /// Well-formed CBOR that does not match the expected type.
    #[error("CBOR does not match the expected shape{}: {message}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Semantic {
        /// Where the offending item starts, if known.
        offset: Option<usize>,
        /// What was wrong.
        message: String,
    },
    /// Nested deeper than [`MAX_CBOR_DEPTH`].
    #[error("CBOR nested deeper than {MAX_CBOR_DEPTH} levels")]
    TooDeep,
    /// Extra bytes after the value.
    #[error("{0} trailing bytes after the CBOR value")]
    TrailingBytes(usize),
    /// The value's `Serialize` impl failed (derived impls never do).
    #[error("cannot encode value as CBOR: {0}")]
    Encode(String),
}

/// Decodes exactly one CBOR value of at most `max_bytes` bytes.
pub fn decode_bounded<T: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<T, CborError> {
    if bytes.len() > max_bytes {
        return Err(CborError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    // Read through a shrinking slice so leftover bytes can be detected.
    let mut rest = bytes;
    let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_CBOR_DEPTH).map_err(|e| {
        match e {
            // A slice reader only fails at end of input.
            ciborium::de::Error::Io(_) => CborError::Truncated,
            ciborium::de::Error::Syntax(offset) => CborError::Syntax(offset),
            ciborium::de::Error::Semantic(offset, message) => CborError::Semantic { offset, message },
            ciborium::de::Error::RecursionLimitExceeded => CborError::TooDeep,
        }
    })?;
    if !rest.is_empty() {
        return Err(CborError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Encodes a value as CBOR.
///
/// Writing into a `Vec` cannot fail; only a hand-written `Serialize` impl that
/// reports an error can make this return `Err`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).map_err(|e| match e {
        ciborium::ser::Error::Io(io) => CborError::Encode(io.to_string()),
        ciborium::ser::Error::Value(message) => CborError::Encode(message),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Hello {
        name: String,
        port: u16,
        tags: Vec<u8>,
    }

    fn hello() -> Hello {
        Hello {
            name: "laptop".into(),
            port: 4242,
            tags: vec![1, 2, 3],
        }
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x81; depth];
        bytes.push(0x00);
        bytes
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&hello()).expect("derived Serialize cannot fail");
        assert_eq!(decode_bounded::<Hello>(&bytes, 64), Ok(hello()));
    }

    #[test]
    fn over_long_input_rejected_before_parsing() {
        let bytes = encode(&hello()).expect("derived Serialize cannot fail");
        let max = bytes.len() - 1;
        assert_eq!(
            decode_bounded::<Hello>(&bytes, max),
            Err(CborError::TooLarge {
                len: bytes.len(),
                max
            })
        );
        // The limit applies to raw length, even for garbage.
        assert!(matches!(
            decode_bounded::<Hello>(&[0xff; 10], 9),
            Err(CborError::TooLarge { .. })
        ));
    }

    #[test]
    fn deep_nesting_rejected() {
        assert_eq!(
            decode_bounded::<ciborium::Value>(&nested(1000), 4096),
            Err(CborError::TooDeep)
        );
        assert_eq!(
            decode_bounded::<ciborium::Value>(&nested(MAX_CBOR_DEPTH + 1), 4096),
            Err(CborError::TooDeep)
        );
        assert!(decode_bounded::<ciborium::Value>(&nested(MAX_CBOR_DEPTH), 4096).is_ok());
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = encode(&hello()).expect("derived Serialize cannot fail");
        bytes.extend_from_slice(&[0x00, 0x00]);
        assert_eq!(
            decode_bounded::<Hello>(&bytes, 64),
            Err(CborError::TrailingBytes(2))
        );
    }

    #[test]
    fn truncated_and_mismatched_rejected() {
        let bytes = encode(&hello()).expect("derived Serialize cannot fail");
        assert_eq!(
            decode_bounded::<Hello>(&bytes[..bytes.len() - 1], 64),
            Err(CborError::Truncated)
        );
        assert!(matches!(
            decode_bounded::<Hello>(&[0x01], 64),
            Err(CborError::Semantic { .. })
        ));
        assert_eq!(decode_bounded::<u8>(&[], 64), Err(CborError::Truncated));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_bounded::<ciborium::Value>(&bytes, 1024);
            let _ = decode_bounded::<Hello>(&bytes, 1024);
        }
    }
}
