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

mod ast;
mod attr;
mod check;
mod ctxt;
mod describe;
mod enum_repr;
mod load;
mod save;
mod suggest;
mod symbol;
mod types;

use proc_macro::TokenStream;
use quote::quote;

/// Derives `vmstate_runtime::VmState` (for structs) or `vmstate_runtime::VmStateField`
/// (for enums with an integer `#[repr]`). See the crate documentation for attributes.
#[proc_macro_derive(VmState, attributes(vmstate))]
pub fn derive_vmstate(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand(&input).into()
}

fn expand(input: &syn::DeriveInput) -> proc_macro2::TokenStream {
    // The attributes are read in one pass, then checked into the IR; every error of
    // both stages is reported together.
    let cx = ctxt::Ctxt::new();
    let attrs = attr::Input::from_ast(&cx, input);
    let checked = attrs.as_ref().and_then(|a| check::check(&cx, a));
    match (cx.check(), checked) {
        (Ok(()), Some(ast::Input::Struct(c))) => expand_struct(&c),
        (Ok(()), Some(ast::Input::Enum(e))) => enum_repr::expand(&e),
        (errors, _) => with_fallback(input, errors.err()),
    }
}

fn expand_struct(c: &ast::Container) -> proc_macro2::TokenStream {
    let ident = c.ident;
    let (impl_generics, ty_generics, where_clause) = c.generics.split_for_impl();
    let description = describe::description(c);
    let save = save::save_fn(c, save::Mode::Save);
    let save_described = save::save_fn(c, save::Mode::Described);
    let load = load::load_fn(c);
    let checks = describe::static_checks(c);
    quote! {
        const _: () = {
            impl #impl_generics ::vmstate_runtime::VmState for #ident #ty_generics #where_clause {
                #description
                #save
                #save_described
                #load
            }

            /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
            /// at this type's own current version).
            impl #impl_generics ::vmstate_runtime::VmStateField for #ident #ty_generics #where_clause {
                const FIELD_TYPE: ::vmstate_runtime::FieldType = ::vmstate_runtime::FieldType {
                    info: "struct",
                    size: <Self as ::vmstate_runtime::VmState>::DESCRIPTION.fixed_body_size(),
                    array_len: ::core::option::Option::None,
                    nested: ::core::option::Option::Some(<Self as ::vmstate_runtime::VmState>::DESCRIPTION),
                };

                #[inline]
                fn save_field<__B: ::vmstate_runtime::__private::BufMut>(
                    &self,
                    __w: &mut ::vmstate_runtime::wire::Writer<__B>,
                ) -> ::vmstate_runtime::Result<()> {
                    ::vmstate_runtime::__private::save_struct(self, __w)
                }

                fn save_field_described<__B: ::vmstate_runtime::__private::BufMut>(
                    &self,
                    __w: &mut ::vmstate_runtime::wire::Writer<__B>,
                    __sink: &mut dyn ::vmstate_runtime::vmstate::DescribeSink,
                ) -> ::vmstate_runtime::Result<()> {
                    <Self as ::vmstate_runtime::VmState>::save_described(self, __w, __sink)
                }

                #[inline]
                fn load_field<__B: ::vmstate_runtime::__private::Buf>(
                    &mut self,
                    __r: &mut ::vmstate_runtime::wire::Reader<__B>,
                ) -> ::vmstate_runtime::Result<()> {
                    ::vmstate_runtime::__private::load_struct(self, __r)
                }
            }

            #checks
        };
    }
}

/// The vmsd name of the stand-in impl emitted after an error. The static checks of a
/// parent (subsection prefix, duplicate names) accept it, so a type that failed to
/// derive does not cause errors in the types that use it.
pub(crate) const FALLBACK_NAME: &str = "\0vmstate-derive: invalid";

/// On error: the errors, plus a stub impl so uses of the type elsewhere do not add a
/// cascade of "VmState is not implemented" errors.
fn with_fallback(input: &syn::DeriveInput, errors: Option<syn::Error>) -> proc_macro2::TokenStream {
    let errors = errors.map(|e| e.to_compile_error()).unwrap_or_default();
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    if matches!(input.data, syn::Data::Enum(_)) {
        return quote! {
            #errors
            impl #impl_generics ::vmstate_runtime::VmStateField for #ident #ty_generics #where_clause {
                const FIELD_TYPE: ::vmstate_runtime::FieldType = ::vmstate_runtime::FieldType::scalar("invalid", 0);
                fn save_field<__B: ::vmstate_runtime::__private::BufMut>(&self, _: &mut ::vmstate_runtime::wire::Writer<__B>) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
                fn load_field<__B: ::vmstate_runtime::__private::Buf>(&mut self, _: &mut ::vmstate_runtime::wire::Reader<__B>) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
            }
        };
    }
    let name = FALLBACK_NAME;
    quote! {
        #errors
        impl #impl_generics ::vmstate_runtime::VmState for #ident #ty_generics #where_clause {
            const DESCRIPTION: &'static ::vmstate_runtime::VmStateDescription = &::vmstate_runtime::VmStateDescription {
                name: #name, version_id: 0, minimum_version_id: 0,
                priority: ::vmstate_runtime::MigrationPriority::Default,
                fields: &[], subsections: &[],
                hooks: ::vmstate_runtime::Hooks { pre_save: false, post_save: false, pre_load: false, post_load: false },
            };
            fn save<__B: ::vmstate_runtime::__private::BufMut>(&self, _: &mut ::vmstate_runtime::wire::Writer<__B>) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
            fn load<__B: ::vmstate_runtime::__private::Buf>(&mut self, _: &mut ::vmstate_runtime::wire::Reader<__B>, _: u32) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
        }
        impl #impl_generics ::vmstate_runtime::VmStateField for #ident #ty_generics #where_clause {
            const FIELD_TYPE: ::vmstate_runtime::FieldType = ::vmstate_runtime::FieldType::scalar("invalid", 0);
            fn save_field<__B: ::vmstate_runtime::__private::BufMut>(&self, _: &mut ::vmstate_runtime::wire::Writer<__B>) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
            fn load_field<__B: ::vmstate_runtime::__private::Buf>(&mut self, _: &mut ::vmstate_runtime::wire::Reader<__B>) -> ::vmstate_runtime::Result<()> { ::core::unreachable!() }
        }
    }
}
