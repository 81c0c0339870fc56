//! The simulator: many `cnspr-proto` nodes on a virtual clock and a virtual network with
//! faults. Placeholder until the issue "Membership and failure detection in the core,
//! proven in the simulator".
#![forbid(unsafe_code)]
