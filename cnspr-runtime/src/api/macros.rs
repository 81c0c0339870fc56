//! The declarations the API would otherwise repeat, each written once: the methods (a
//! marker type per method, and the catalogue), the error kinds with their codes, and a
//! text-or-base64 pair of fields.

/// Declares every method at once: for each, a marker type implementing
/// [`crate::api::Method`] (and, with `notifies`, [`crate::api::Streams`]); and
/// `catalogue()`, which lists them all in the order given.
macro_rules! methods {
    ($(
        $(#[$doc:meta])*
        $marker:ident = $name:literal, $params:ty => $result:ty $(, notifies $notification:literal: $notice:ty)?;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct $marker;

            impl $crate::api::Method for $marker {
                const NAME: &'static str = $name;
                type Params = $params;
                type Result = $result;
            }

            $(
                impl $crate::api::Streams for $marker {
                    const NOTIFICATION: &'static str = $notification;
                    type Notification = $notice;
                }
            )?
        )*

        /// Every method: those that answer once, then those that stream.
        pub fn catalogue() -> Vec<$crate::api::method::MethodInfo> {
            vec![$(
                $crate::api::method::MethodInfo::of::<$marker>()
                    $(.notifying::<$notice>($notification))?
            ),*]
        }
    };
}

/// Declares [`crate::api::ErrorKind`]: each kind with its code, which its documentation
/// (and so the schema's description) starts with, and `ErrorKind::code`.
macro_rules! error_kinds {
    ($(
        #[doc = $summary:literal]
        $(#[doc = $more:literal])*
        $code:literal => $kind:ident $({
            $(
                $(#[$field_attribute:meta])*
                $field:ident: $type:ty
            ),* $(,)?
        })?,
    )*) => {
        /// Why a request that was understood was not carried out, with what a program
        /// needs to act on it. On the wire: the error's `data`, tagged by `kind`.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum ErrorKind {
            $(
                #[doc = concat!("Code ", stringify!($code), ":", $summary)]
                $(#[doc = $more])*
                $kind $({
                    $(
                        $(#[$field_attribute])*
                        $field: $type,
                    )*
                })?,
            )*
        }

        impl ErrorKind {
            /// Its JSON-RPC error code.
            pub fn code(&self) -> i64 {
                match self {
                    $(ErrorKind::$kind { .. } => $code,)*
                }
            }
        }
    };
}

/// Declares bytes carried as UTF-8 text in field `$text` or, when they are not UTF-8, as
/// base64 in field `$b64` (see [`crate::api::payload`]).
macro_rules! text_or_base64 {
    ($(#[$doc:meta])* $name:ident, $text:literal, $b64:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub struct $name {
            #[doc = concat!("The bytes as UTF-8 text (in place of `", $b64, "`).")]
            #[serde(rename = $text, default, skip_serializing_if = "Option::is_none")]
            pub text: Option<String>,
            #[doc = concat!("Any bytes in base64, standard alphabet, padded (in place of `", $text, "`).")]
            #[serde(rename = $b64, default, skip_serializing_if = "Option::is_none")]
            pub base64: Option<String>,
        }

        impl $name {
            /// The bytes as text if they are UTF-8, else as base64.
            pub fn new(bytes: Vec<u8>) -> Self {
                let (text, base64) = $crate::api::payload::encode(bytes);
                Self { text, base64 }
            }

            /// The bytes, `None` if neither field is there.
            pub fn bytes(&self) -> Result<Option<Vec<u8>>, $crate::api::payload::PayloadError> {
                $crate::api::payload::decode(self.text.as_deref(), self.base64.as_deref(), [$text, $b64])
            }
        }
    };
}
