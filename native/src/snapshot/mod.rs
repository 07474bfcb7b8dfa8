//! Snapshot capture: copying a VM's RAM file and disk image quickly while it is paused.

pub mod copy;
