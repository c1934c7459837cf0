//! Hostile and broken input: every error class of the runtime, with the kind, the
//! field path (`Error::path_string()`) and the byte offset (`Error::offset()`), plus
//! the malicious-stream cases of qemu-wire.md §9 that apply at the VMState level.

mod common;

use std::fmt;

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{from_bytes, to_bytes, Error, ErrorKind, VmState, VmStateTmp, WithTmp};

use common::bytes::{cat, sub_header};

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

/// The cases, one module per error class (the files in `bad_input/`).
mod bad_input {
    use super::*;

    mod truncation;
    mod counts;
    mod values;
    mod versions_subsections;
    mod validate;
    mod cve_cases;
    mod save_errors;
    mod hook_errors;
}
