//! `#[derive(VmState)]` on a unit-variant enum with an integer `#[repr]`: a field
//! type encoded as its discriminant; unknown discriminants fail to load. The wire
//! type (QEMU info name and size) is the repr integer's own.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::paths::Paths;
use crate::ast::ReprEnum;

pub fn expand(e: &ReprEnum, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let import = paths.import();
    let ident = e.ident;
    let enum_name = ident.to_string();
    let repr = &e.repr;
    let repr = quote!(#p::#repr);
    let (impl_generics, ty_generics, where_clause) = e.generics.split_for_impl();
    let consts: Vec<_> = e
        .variants
        .iter()
        .map(|v| format_ident!("__VMSTATE_DISCRIMINANT_{}", v))
        .collect();
    let variants = &e.variants;
    let doc = super::doc::enum_doc(e);
    quote! {
        const _: () = {
            #import
            #[doc = #doc]
            #[automatically_derived]
            impl #impl_generics #p::VmStateField for #ident #ty_generics #where_clause {
                const FIELD_TYPE: #p::FieldType = <#repr as #p::VmStateField>::FIELD_TYPE;

                #[inline]
                fn save_field<__B: #p::BufMut>(
                    &self,
                    __w: &mut #p::Writer<__B>,
                ) -> #p::Result<(), #p::Error> {
                    let __v: #repr = match self { #( Self::#variants => Self::#variants as #repr, )* };
                    <#repr as #p::VmStateField>::save_field(&__v, __w)
                }

                #[inline]
                // The discriminant constants keep the variants' names; matching on them
                // must not warn in the user's crate.
                #[allow(non_upper_case_globals)]
                fn load_field<__B: #p::Buf>(
                    &mut self,
                    __r: &mut #p::Reader<__B>,
                ) -> #p::Result<(), #p::Error> {
                    #( const #consts: #repr = #ident::#variants as #repr; )*
                    let __at = __r.position();
                    let mut __v: #repr = 0;
                    <#repr as #p::VmStateField>::load_field(&mut __v, __r)?;
                    *self = match __v {
                        #( #consts => Self::#variants, )*
                        __other => return #p::Result::Err(#p::invalid_enum(#enum_name, __other, __at)),
                    };
                    #p::Result::Ok(())
                }
            }
        };
    }
}
