//! Code generation: from the checked model to the impls.
//!
//! Every output is one `const _: () = { ... };` item (nothing leaks into the
//! caller's namespace), every impl is `#[automatically_derived]`, and every path
//! goes through [`paths`] (the runtime's `__private` module).

mod description;
mod doc;
pub mod enum_repr;
pub mod fallback;
mod load;
#[cfg(test)]
mod output_tests;
pub mod paths;
mod save;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Container;
use paths::Paths;

/// `VmState` and `VmStateField` for a struct, and its compile-time checks.
pub fn container(c: &Container, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let import = paths.import();
    let ident = c.ident;
    let (impl_generics, ty_generics, where_clause) = c.generics.split_for_impl();
    let description = description::description(c, paths);
    let save = save::save_fn(c, paths);
    let load = load::load_fn(c, paths);
    let checks = description::static_checks(c, paths);
    let doc = doc::wire_format_doc(c);
    quote! {
        const _: () = {
            #import
            #[doc = #doc]
            #[automatically_derived]
            impl #impl_generics #p::VmState for #ident #ty_generics #where_clause {
                #description
                #save
                #load
            }

            /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
            /// at this type's own current version).
            #[automatically_derived]
            impl #impl_generics #p::VmStateField for #ident #ty_generics #where_clause {
                const FIELD_TYPE: #p::FieldType = #p::struct_type(<Self as #p::VmState>::DESCRIPTION);

                #[inline]
                fn save_field<__B: #p::BufMut>(&self, __w: &mut #p::Writer<__B>) -> #p::Result<(), #p::Error> {
                    #p::save_struct(self, __w)
                }

                #[inline]
                fn save_field_with<__B: #p::BufMut, __S: #p::DescribeSink + ?#p::Sized>(
                    &self,
                    __w: &mut #p::Writer<__B>,
                    __sink: &mut __S,
                ) -> #p::Result<(), #p::Error> {
                    <Self as #p::VmState>::save_with(self, __w, __sink)
                }

                #[inline]
                fn load_field<__B: #p::Buf>(&mut self, __r: &mut #p::Reader<__B>) -> #p::Result<(), #p::Error> {
                    #p::load_struct(self, __r)
                }
            }

            #checks
        };
    }
}
