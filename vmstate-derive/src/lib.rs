//! `#[derive(VmState)]`: QEMU-VMState-compatible save and load code, generated
//! from an annotated struct, plus its static description.
//!
//! Use it through `vmstate_runtime` (which re-exports it):
//!
//! ```
//! use vmstate_runtime::{to_bytes, VmState};
//!
//! #[derive(VmState, Default)]
//! #[vmstate(name = "uart", version = 2, minimum_version = 1)]
//! struct Uart {
//!     lcr: u8,
//!     fifo_len: u8,
//!     #[vmstate(varray(len = fifo_len), max = 16)]
//!     fifo: Vec<u8>,
//!     #[vmstate(since = 2)]
//!     scratch: u8,
//! }
//! assert_eq!(to_bytes(&Uart { lcr: 3, fifo_len: 1, fifo: vec![0x41], scratch: 7 }).unwrap(),
//!            [3, 1, 0x41, 7]);
//! ```
//!
//! # Container attributes (`#[vmstate(...)]` on the struct)
//!
//! | key | QEMU equivalent | meaning |
//! |---|---|---|
//! | `name = "..."` | `.name` | vmsd name (defaults to the type name) |
//! | `version = N` | `.version_id` | current version, written on save (default 0, as in QEMU) |
//! | `minimum_version = N` | `.minimum_version_id` | oldest version load accepts (default: `version`) |
//! | `priority = Variant` | `.priority` | a `MigrationPriority` variant (default `Default`) |
//! | `pre_save = path` | `.pre_save` | `fn(&Self) -> Result<(), E>` |
//! | `post_save = path` | `.post_save` | `fn(&Self) -> Result<(), E>` (also runs when saving failed) |
//! | `pre_load = path` | `.pre_load` | `fn(&mut Self) -> Result<(), E>` |
//! | `post_load = path` | `.post_load` | `fn(&mut Self, version_id: u32) -> Result<(), E>` (after subsections) |
//! | `crate = "path"` | — | where generated code finds the runtime, for a VMM that re-exports it (default `::vmstate_runtime`); also on enums |
//!
//! `E` is anything convertible into `Box<dyn Error + Send + Sync>` (including
//! `vmstate_runtime::Error`, `String` and `&str`).
//!
//! # Field attributes
//!
//! | key | QEMU equivalent | meaning |
//! |---|---|---|
//! | `since = N` | `_V(.., N)` | on the wire only for versions >= N |
//! | `test = path` | `_TEST` | `fn(&Self, u32) -> bool` decides presence |
//! | `subsection(needed = path)` | subsections | a field whose type has its own description; sent when `fn(&Self) -> bool` says so (plain `subsection`: always sent) |
//! | `with_tmp` | `VMSTATE_WITH_TMP` | a `WithTmp<T>` marker, `T: VmStateTmp<Self>` |
//! | `skip` | — | not migrated |
//! | `unused = N` | `VMSTATE_UNUSED` | N zero bytes / N bytes skipped |
//! | `varray(len = f)` | `VMSTATE_VARRAY_*` | `Vec<T>` or `[T; N]`, count in earlier field `f` |
//! | `vbuffer(len = f)` | `VMSTATE_VBUFFER*` | byte buffer sized by earlier field `f` |
//! | `bitmap(len = f)` | `VMSTATE_BITMAP` | `Vec<u64>` of `f` bits |
//! | `list` | `VMSTATE_QTAILQ_V` / `QLIST_V` | `Vec<T>`, each element 0x01 + body, then 0x00 |
//! | `max = N` | — | bound on a count from the stream (required for `Vec`s) |
//! | `equal` | `*_EQUAL` | load fails unless the value equals ours |
//! | `positive_le` | `VMSTATE_INT32_POSITIVE_LE` | `0 <= value <= ours` |
//! | `timer` | `VMSTATE_TIMER` | `Option<u64>` expiry in ns, all ones = not armed |
//! | `buffer` | `VMSTATE_BUFFER` | describe a `[u8; N]` as one opaque buffer |
//! | `validate = path` | `VMSTATE_VALIDATE` | `fn(&Self, u32) -> bool` checked after this field loads |
//! | `rename = "a.b"` | — | the field's name in descriptions, vmdesc and errors (QEMU member paths such as `queue.rptr`) |
//!
//! On an enum with `#[repr(u8)]` (or another integer type) the derive makes the
//! enum a field type encoded as its discriminant; unknown values fail to load.
//!
//! Misuse is a compile error at the offending attribute, key or field type (never
//! at the `#[derive]`); all errors of one derive are reported together, and a type
//! whose derive failed still gets stand-in impls so its uses add no further errors.
//! `ui-tests/tests/ui/fail/` shows every diagnostic.
//!
//! # What it generates
//!
//! One `const _: () = { ... };` block per type, naming the runtime only through
//! `vmstate_runtime::__private` (so it builds where the caller shadows `Result`,
//! `Option`, `core` or `std`), with `#[automatically_derived]` impls: the static
//! `DESCRIPTION`, one save path `save_with` generic over the describe sink (plain
//! `save` passes a no-op sink), `load`, and the `VmStateField` impl that nests the
//! type in others. `src/expand/output_tests/expanded/` holds the exact expansion of
//! representative inputs.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod suggest;
mod symbol;
mod types;

use expand::paths::Paths;
use proc_macro::TokenStream;

/// Derives `vmstate_runtime::VmState` (for structs) or `vmstate_runtime::VmStateField`
/// (for enums with an integer `#[repr]`). See the crate documentation for attributes.
#[proc_macro_derive(VmState, attributes(vmstate))]
pub fn derive_vmstate(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand_derive(&input).into()
}

fn expand_derive(input: &syn::DeriveInput) -> proc_macro2::TokenStream {
    // The attributes are read in one pass, then checked into the IR; every error of
    // both stages is reported together.
    let cx = ctxt::Ctxt::new();
    let attrs = attr::Input::from_ast(&cx, input);
    let checked = attrs.as_ref().and_then(|a| check::check(&cx, a));
    match (cx.check(), checked) {
        (Ok(()), Some(ast::Input::Struct(c))) => expand::container(&c, &Paths::new(&c.runtime)),
        (Ok(()), Some(ast::Input::Enum(e))) => {
            expand::enum_repr::expand(&e, &Paths::new(&e.runtime))
        }
        (errors, _) => {
            // The stand-in impls name the runtime where the input says it is, if
            // its `crate = "..."` could be read.
            let runtime = attrs
                .as_ref()
                .and_then(|a| a.container.runtime.as_ref())
                .map(|r| r.value.clone());
            let paths = runtime.map_or_else(Paths::default_runtime, |r| Paths::new(&r));
            let errors = errors.err().map(|e| e.to_compile_error());
            expand::fallback::expand(input, errors.unwrap_or_default(), &paths)
        }
    }
}
