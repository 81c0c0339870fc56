//! Encrypted transport between two devices once a handshake finished: explicit 64-bit
//! counters, the anti-replay window, key rotation, and the [`Endpoint`] that routes
//! datagrams to handshakes and sessions.

pub mod beacon;
pub mod cookies;
mod endpoint;
mod keys;
pub mod observed;
mod outbox;
pub mod relay_path;
mod replay;
mod session;
pub mod stealth;

pub use endpoint::{
    Endpoint, EndpointConfig, EndpointEvent, Hint, InviteSecret, ReceiveError, RelayedTransmit, SendError,
    Sent, Transmit, HINT_LIFETIME, MAX_CANDIDATES, MAX_CARRIED_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, PROLOGUE,
};
pub use keys::{SealError, TransportKeys, HARD_REJECT_AFTER_MESSAGES};
pub use replay::{ReplayWindow, WINDOW_COUNTERS};
pub use session::{KeySlot, Session, SessionConfig};
