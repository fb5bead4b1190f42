//! The waits tokio and hyper leave unbounded, bounded: the minimum transfer
//! rate a peer must keep (`rate`), a client that stops reading its response
//! (`write_stall`), and a connection with no traffic either way (`idle`).

pub mod idle;
pub mod rate;
pub mod write_stall;
