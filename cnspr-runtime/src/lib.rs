//! The Tokio shell around `cnspr-proto`: UDP sockets, timers, the control socket, handler
//! processes and the on-disk store. Placeholder: nothing is built here yet (see the issue
//! "The daemon: runtime shell, control socket, command line and pairing").
#![forbid(unsafe_code)]
