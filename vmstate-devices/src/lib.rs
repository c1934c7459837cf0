//! Device models whose state migrates with vmstate-rs.
//!
//! The PC keyboard controller, guest RAM and virtio models land here as their
//! issues are completed.
#![deny(missing_docs)]
