//! What the fuzz targets share: the framing of a fuzz input as steps ([`steps`]), and a
//! node paired with a peer that sends it whatever the fuzzer chooses ([`paired`]).

pub mod paired;
pub mod steps;
