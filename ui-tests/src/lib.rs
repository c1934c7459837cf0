//! trybuild UI tests for `#[derive(VmState)]` live in `tests/`:
//!
//! * `tests/ui/pass/*.rs` must compile and run (each `main` asserts a roundtrip);
//! * `tests/ui/fail/*.rs` must fail to compile with exactly the `.stderr` next to it.
//!
//! Run with `cargo test -p ui-tests`; refresh snapshots with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and review the diff.
