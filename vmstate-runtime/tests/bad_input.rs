//! Hostile and broken input: every error class of the runtime, with the kind, the
//! field path (`Error::path_string()`) and the byte offset (`Error::offset()`), plus
//! the malicious-stream cases of qemu-wire.md §9 that apply at the VMState level.

mod common;

use std::fmt;

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{from_bytes, to_bytes, Error, ErrorKind, VmState, VmStateTmp, WithTmp};

use common::bytes::{cat, sub_header};
use common::kinds::{assert_kind, kind};

/// Loads and expects an error; checks the path and offset, returns the error.
#[track_caller]
fn load_err<T: VmState + Default + fmt::Debug>(
    bytes: &[u8],
    version: u32,
    path: &str,
    offset: u64,
) -> Error {
    let e = from_bytes::<T>(bytes, version).expect_err("load should fail");
    assert_eq!(e.path_string(), path, "path of: {e}");
    assert_eq!(e.offset(), Some(offset), "offset of: {e}");
    // Every error renders with its path and offset.
    let text = e.to_string();
    assert!(
        text.contains(&format!("(at byte offset {offset})")),
        "{text}"
    );
    if !path.is_empty() {
        assert!(text.starts_with(&format!("{path}: ")), "{text}");
    }
    e
}

/// A check of an error's kind: a `matches!` of the expected [`ErrorKind`]
/// (made by [`kind!`]).
type KindCheck = fn(&ErrorKind) -> bool;

/// Loads each case `(bytes, path, offset, kind)` into a `T` at `version`: each
/// must fail as [`load_err`] checks, with an error of that kind.
#[track_caller]
fn load_errs<T: VmState + Default + fmt::Debug>(
    version: u32,
    cases: &[(&[u8], &str, u64, KindCheck)],
) {
    for &(bytes, path, offset, kind) in cases {
        let e = load_err::<T>(bytes, version, path, offset);
        assert!(kind(e.kind()), "{bytes:02x?}: {e}");
    }
}

/// Saves and expects an error of `kind`; returns the error.
#[track_caller]
fn expect_save_err<T: VmState>(value: &T, kind: KindCheck) -> Error {
    let e = to_bytes(value).expect_err("save should fail");
    assert!(kind(e.kind()), "{e}");
    e
}

/// The cases, one module per error class (the files in `bad_input/`).
// Inline, so that rustc finds them in `bad_input/` with no `#[path]` while
// `tests/common` stays this crate's `common`.
mod bad_input {
    use super::*;

    mod counts;
    mod cve_cases;
    mod hook_errors;
    mod save_errors;
    mod truncation;
    mod validate;
    mod values;
    mod versions_subsections;
}
