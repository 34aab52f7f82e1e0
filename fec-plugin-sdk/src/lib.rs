//! FEC plugin SDK: what a bytecode author and any plugin host need.
//!
//! (crate docs are completed below as modules land)

pub mod abi;
pub mod verify;
