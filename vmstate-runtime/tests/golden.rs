//! Golden wire tests: for every encoding the derive supports, the exact bytes,
//! worked out by hand from QEMU's rules (`migration/vmstate.c`,
//! `migration/vmstate-types.c`; see qemu-wire.md §2) and, where QEMU has one, the
//! same object and byte string as its unit test `tests/unit/test-vmstate.c`.
//!
//! Each test saves a value and compares with the literal bytes, then loads the
//! literal bytes back (into a default value or into a preset destination, as QEMU's
//! tests do) and compares the result.

mod common;

use std::cell::RefCell;

use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{
    from_bytes, to_bytes, Error, ErrorKind, FieldLayout, MigrationPriority, VmState, VmStateTmp,
    WithTmp,
};

use common::bytes::{cat, sub_header};
use common::kinds::assert_kind;

/// The golden pair: `v` saves to exactly `wire`, and `wire` loaded at
/// `version` into a default value gives `v` back.
#[track_caller]
fn assert_wire<T: VmState + Default + PartialEq + std::fmt::Debug>(
    v: &T,
    wire: &[u8],
    version: u32,
) {
    assert_eq!(to_bytes(v).unwrap(), wire);
    assert_eq!(from_bytes::<T>(wire, version).unwrap(), *v);
}

/// Loads `bytes` at `version` into an existing destination (QEMU loads into the live
/// device, so fields absent from the stream keep the destination's values) and
/// checks that everything was consumed.
fn load_into<T: VmState>(dest: &mut T, bytes: &[u8], version: u32) -> Result<(), Error> {
    let mut r = Reader::new(bytes);
    dest.load(&mut r, version)?;
    assert_eq!(r.remaining(), 0, "load left bytes unconsumed");
    Ok(())
}

/// The tests, one module per encoding (the files in `golden/`).
// Inline, so that rustc finds them in `golden/` with no `#[path]` while
// `tests/common` stays this crate's `common`.
mod golden {
    use super::*;

    mod arrays;
    mod bitmap;
    mod description;
    mod enums;
    mod field_tests;
    mod hooks;
    mod lists;
    mod nested;
    mod pointer_arrays;
    mod primitives;
    mod special_fields;
    mod subsections;
    mod validate;
    mod varrays;
    mod versions;
    mod with_tmp;
}
