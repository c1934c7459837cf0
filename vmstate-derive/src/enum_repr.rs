//! `#[derive(VmState)]` on a unit-variant enum with an integer `#[repr]`: a field
//! type encoded as its discriminant; unknown discriminants fail to load.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ast::ReprEnum;

pub fn expand(e: &ReprEnum) -> TokenStream {
    let ident = e.ident;
    let enum_name = ident.to_string();
    let repr = &e.repr;
    let (impl_generics, ty_generics, where_clause) = e.generics.split_for_impl();
    let consts: Vec<_> = e
        .variants
        .iter()
        .map(|v| format_ident!("__VMSTATE_DISCRIMINANT_{}", v))
        .collect();
    let variants = &e.variants;
    let info = match repr.to_string().as_str() {
        "u8" => "uint8",
        "u16" => "uint16",
        "u32" => "uint32",
        "u64" => "uint64",
        "i8" => "int8",
        "i16" => "int16",
        "i32" => "int32",
        _ => "int64",
    };
    quote! {
        impl #impl_generics ::vmstate_runtime::VmStateField for #ident #ty_generics #where_clause {
            const FIELD_TYPE: ::vmstate_runtime::FieldType =
                ::vmstate_runtime::FieldType::scalar(#info, ::core::mem::size_of::<#repr>());

            #[inline]
            fn save_field<__B: ::vmstate_runtime::__private::BufMut>(
                &self,
                __w: &mut ::vmstate_runtime::wire::Writer<__B>,
            ) -> ::vmstate_runtime::Result<()> {
                let __v: #repr = match self { #( Self::#variants => Self::#variants as #repr, )* };
                <#repr as ::vmstate_runtime::VmStateField>::save_field(&__v, __w)
            }

            #[inline]
            // The discriminant constants keep the variants' names; matching on them
            // must not warn in the user's crate.
            #[allow(non_upper_case_globals)]
            fn load_field<__B: ::vmstate_runtime::__private::Buf>(
                &mut self,
                __r: &mut ::vmstate_runtime::wire::Reader<__B>,
            ) -> ::vmstate_runtime::Result<()> {
                #( #[allow(non_upper_case_globals)] const #consts: #repr = #ident::#variants as #repr; )*
                let __at = __r.position();
                let mut __v: #repr = 0;
                <#repr as ::vmstate_runtime::VmStateField>::load_field(&mut __v, __r)?;
                *self = match __v {
                    #( #consts => Self::#variants, )*
                    __other => {
                        return ::vmstate_runtime::__private::Result::Err(
                            ::vmstate_runtime::Error::at(
                                ::vmstate_runtime::ErrorKind::InvalidEnum {
                                    enum_name: #enum_name,
                                    value: __other as i128,
                                },
                                __at,
                            ),
                        )
                    }
                };
                ::vmstate_runtime::__private::Result::Ok(())
            }
        }
    }
}
