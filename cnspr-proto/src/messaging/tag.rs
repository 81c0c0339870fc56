//! Tags name kinds of message (`util.clipboard.set`): 1–255 bytes of words of
//! `[A-Za-z0-9_-]` joined by `.`. `daemon` and `peer` name the daemon's own event families
//! and may not be whole words of a user tag.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 255;
/// Words reserved for the daemon's own events.
pub const RESERVED_WORDS: [&str; 2] = ["daemon", "peer"];

/// A valid user tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

/// Why a tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Empty or longer than 255 bytes.
    #[error("a tag has 1 to {MAX_TAG_BYTES} bytes")]
    Length,
    /// An empty word (`a..b`, a leading or trailing dot).
    #[error("a tag is words joined by single dots, with no empty word")]
    EmptyWord,
    /// A character outside `[A-Za-z0-9_-.]`.
    #[error("tag character {0:?} is not allowed (letters, digits, _ and - in words joined by .)")]
    Character(char),
    /// `daemon` or `peer` as a word.
    #[error("{0:?} is reserved for the daemon's own events and cannot be a word of a tag")]
    Reserved(String),
}

impl Tag {
    /// Checks `text` and makes it a tag.
    pub fn new(text: &str) -> Result<Self, TagError> {
        if text.is_empty() || text.len() > MAX_TAG_BYTES {
            return Err(TagError::Length);
        }
        for word in text.split('.') {
            if word.is_empty() {
                return Err(TagError::EmptyWord);
            }
            if let Some(bad) = word
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(TagError::Character(bad));
            }
            if RESERVED_WORDS.contains(&word) {
                return Err(TagError::Reserved(word.to_owned()));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its words.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Tag::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_tags() {
        for good in ["util.clipboard.set", "a", "media-player_2.x", &"a".repeat(255)] {
            assert_eq!(Tag::new(good).map(|t| t.as_str().to_owned()), Ok(good.to_owned()));
        }
        assert_eq!(Tag::new(""), Err(TagError::Length));
        assert_eq!(Tag::new(&"a".repeat(256)), Err(TagError::Length));
        assert_eq!(Tag::new("a..b"), Err(TagError::EmptyWord));
        assert_eq!(Tag::new(".a"), Err(TagError::EmptyWord));
        assert_eq!(Tag::new("a/b"), Err(TagError::Character('/')));
        assert_eq!(Tag::new("é"), Err(TagError::Character('é')));
        assert_eq!(Tag::new("my.peer.x"), Err(TagError::Reserved("peer".into())));
        assert_eq!(Tag::new("daemon"), Err(TagError::Reserved("daemon".into())));
        assert!(Tag::new("peers.daemonic").is_ok());
    }
}
