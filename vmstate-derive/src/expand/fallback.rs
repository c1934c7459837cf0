//! What a derive that failed emits besides its errors: stand-in impls, so uses of
//! the type elsewhere do not add a cascade of "VmState is not implemented" errors.

use proc_macro2::TokenStream;
use quote::quote;

use super::paths::Paths;

/// The vmsd name of the stand-in impl emitted after an error. The static checks of a
/// parent (subsection prefix, duplicate names) accept it, so a type that failed to
/// derive does not cause errors in the types that use it.
pub const FALLBACK_NAME: &str = "\0vmstate-derive: invalid";

/// The errors, plus the stand-in impls (`VmStateField` for an enum; `VmState` and
/// `VmStateField` for a struct), whose methods are never reached: the crate does
/// not compile.
pub fn expand(input: &syn::DeriveInput, errors: TokenStream, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let import = paths.import();
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let field_impl = quote! {
        #[automatically_derived]
        impl #impl_generics #p::VmStateField for #ident #ty_generics #where_clause {
            const FIELD_TYPE: #p::FieldType = #p::INVALID_TYPE;
            fn save_field<__B: #p::BufMut>(&self, _: &mut #p::Writer<__B>) -> #p::Result<(), #p::Error> { #p::unreachable!() }
            fn load_field<__B: #p::Buf>(&mut self, _: &mut #p::Reader<__B>) -> #p::Result<(), #p::Error> { #p::unreachable!() }
        }
    };
    let state_impl = match input.data {
        syn::Data::Enum(_) => quote!(),
        _ => quote! {
            #[automatically_derived]
            impl #impl_generics #p::VmState for #ident #ty_generics #where_clause {
                const DESCRIPTION: &'static #p::VmStateDescription = &#p::VmStateDescription {
                    name: #FALLBACK_NAME, version_id: 0, minimum_version_id: 0,
                    priority: #p::MigrationPriority::Default,
                    fields: &[], subsections: &[],
                    hooks: #p::Hooks { pre_save: false, post_save: false, pre_load: false, post_load: false },
                };
                fn save_with<__B: #p::BufMut, __S: #p::DescribeSink + ?#p::Sized>(&self, _: &mut #p::Writer<__B>, _: &mut __S) -> #p::Result<(), #p::Error> { #p::unreachable!() }
                fn load<__B: #p::Buf>(&mut self, _: &mut #p::Reader<__B>, _: #p::u32) -> #p::Result<(), #p::Error> { #p::unreachable!() }
            }
        },
    };
    quote! {
        #errors
        const _: () = {
            #import
            #state_impl
            #field_impl
        };
    }
}
