//! A fuzz input as a sequence of steps: each is a tag byte (even: send, odd: wait) and a
//! little-endian `u16`; a send's bytes (that many, or what is left) follow. The framing is
//! simple so that seeds can be written by hand or by `examples/seeds.rs`.

use std::time::Duration;

/// One thing the peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Sends these bytes.
    Send(&'a [u8]),
    /// Lets this much time pass (up to about 65 s), running the node's timers.
    Wait(Duration),
}

/// The steps `data` holds; a truncated header ends them.
pub fn steps(mut data: &[u8]) -> impl Iterator<Item = Step<'_>> {
    std::iter::from_fn(move || {
        let (header, rest) = data.split_at_checked(3)?;
        let number = u16::from_le_bytes([header[1], header[2]]);
        if header[0] % 2 == 1 {
            data = rest;
            return Some(Step::Wait(Duration::from_millis(u64::from(number))));
        }
        let (bytes, rest) = rest.split_at(rest.len().min(usize::from(number)));
        data = rest;
        Some(Step::Send(bytes))
    })
}

/// The input that sends `bytes` (at most 65,535 of them).
pub fn send(bytes: &[u8]) -> Vec<u8> {
    let length = u16::try_from(bytes.len()).expect("a seed of at most 65,535 bytes");
    let mut out = vec![0];
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The input that waits `millis`.
pub fn wait(millis: u16) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(&millis.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_what_was_written() {
        let input = [send(b"abc"), wait(250), send(b""), vec![0, 9]].concat();
        let read: Vec<_> = steps(&input).collect();
        assert_eq!(
            read,
            [
                Step::Send(b"abc"),
                Step::Wait(Duration::from_millis(250)),
                Step::Send(b"")
            ]
        );
    }
}
