//! The static description (`DESCRIPTION`) and the compile-time checks that need
//! resolved types: field types implement `VmStateField`, subsection types implement
//! `VmState`, subsection names are unique and carry the parent's name as prefix.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::model::{Container, Field, FieldKind};

pub fn description(c: &Container) -> TokenStream {
    let name = &c.name;
    let version = c.version;
    let min = c.minimum_version;
    let priority = &c.priority;
    let fields = c.fields.iter().map(field_description);
    let subsections = c.subsections.iter().map(|s| {
        let field = s.ident.to_string();
        let ty = s.ty;
        quote! {
            ::vmstate_runtime::SubsectionDescription {
                field: #field,
                description: <#ty as ::vmstate_runtime::VmState>::DESCRIPTION,
            }
        }
    });
    let hooks = {
        let (a, b, cc, d) = (
            c.hooks.pre_save.is_some(),
            c.hooks.post_save.is_some(),
            c.hooks.pre_load.is_some(),
            c.hooks.post_load.is_some(),
        );
        quote! {
            ::vmstate_runtime::Hooks { pre_save: #a, post_save: #b, pre_load: #cc, post_load: #d }
        }
    };
    quote! {
        const DESCRIPTION: &'static ::vmstate_runtime::VmStateDescription =
            &::vmstate_runtime::VmStateDescription {
                name: #name,
                version_id: #version,
                minimum_version_id: #min,
                priority: ::vmstate_runtime::MigrationPriority::#priority,
                fields: &[ #( #fields ),* ],
                subsections: &[ #( #subsections ),* ],
                hooks: #hooks,
            };
    }
}

fn field_description(f: &Field) -> TokenStream {
    let name = f.ident.to_string();
    let ty = f.ty;
    let since = f.since;
    let has_test = f.test.is_some();
    let has_validate = f.validate.is_some();
    let ft = |t: &syn::Type| quote!(<#t as ::vmstate_runtime::VmStateField>::FIELD_TYPE);
    let (field_type, layout) = match &f.kind {
        FieldKind::Plain => {
            let t = ft(ty);
            (
                t.clone(),
                quote! {
                    match #t.array_len {
                        ::core::option::Option::Some(len) => ::vmstate_runtime::FieldLayout::Array { len },
                        ::core::option::Option::None => ::vmstate_runtime::FieldLayout::Single,
                    }
                },
            )
        }
        FieldKind::Buffer => (
            quote! {
                ::vmstate_runtime::FieldType::scalar("buffer", ::core::mem::size_of::<#ty>())
            },
            quote!(::vmstate_runtime::FieldLayout::Single),
        ),
        FieldKind::Equal => {
            let t = ft(ty);
            (
                quote! {
                    #t.with_info(match #t.info.as_bytes() {
                        b"uint8" => "uint8 equal",
                        b"uint16" => "uint16 equal",
                        b"uint32" => "uint32 equal",
                        b"int32" => "int32 equal",
                        // QEMU names its uint64 equal info "int64 equal".
                        _ => "int64 equal",
                    })
                },
                quote!(::vmstate_runtime::FieldLayout::Single),
            )
        }
        FieldKind::PositiveLe => (
            quote!(::vmstate_runtime::FieldType::scalar("int32 le", 4)),
            quote!(::vmstate_runtime::FieldLayout::Single),
        ),
        FieldKind::VarVec {
            elem,
            len,
            max,
            buffer,
        } => {
            let count_field = len.to_string();
            let t = if *buffer {
                quote!(::vmstate_runtime::FieldType::scalar("buffer", 1))
            } else {
                ft(elem)
            };
            (
                t,
                quote!(::vmstate_runtime::FieldLayout::VarArray { count_field: #count_field, max: #max }),
            )
        }
        FieldKind::VarArray {
            elem,
            n,
            len,
            max,
            buffer,
        } => {
            let count_field = len.to_string();
            let t = if *buffer {
                quote!(::vmstate_runtime::FieldType::scalar("buffer", 1))
            } else {
                ft(elem)
            };
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!((#n) as usize),
            };
            (
                t,
                quote!(::vmstate_runtime::FieldLayout::VarArray { count_field: #count_field, max: #max }),
            )
        }
        FieldKind::Bitmap { len, max } => {
            let bits_field = len.to_string();
            (
                quote!(::vmstate_runtime::FieldType::scalar("bitmap", 8)),
                quote!(::vmstate_runtime::FieldLayout::Bitmap { bits_field: #bits_field, max_bits: #max }),
            )
        }
        FieldKind::List { elem, max } => (
            quote! {
                ::vmstate_runtime::FieldType {
                    info: "qtailq",
                    size: ::core::option::Option::None,
                    array_len: ::core::option::Option::None,
                    nested: ::core::option::Option::Some(<#elem as ::vmstate_runtime::VmState>::DESCRIPTION),
                }
            },
            quote!(::vmstate_runtime::FieldLayout::List { max: #max }),
        ),
        FieldKind::Unused(n) => (
            quote!(::vmstate_runtime::FieldType::scalar("unused_buffer", #n)),
            quote!(::vmstate_runtime::FieldLayout::Unused { size: #n }),
        ),
        FieldKind::Timer => (
            quote!(::vmstate_runtime::FieldType::scalar("timer", 8)),
            quote!(::vmstate_runtime::FieldLayout::Single),
        ),
        FieldKind::WithTmp(tmp) => (
            quote! {
                ::vmstate_runtime::FieldType {
                    info: "tmp",
                    size: <#tmp as ::vmstate_runtime::VmState>::DESCRIPTION.fixed_body_size(),
                    array_len: ::core::option::Option::None,
                    nested: ::core::option::Option::Some(<#tmp as ::vmstate_runtime::VmState>::DESCRIPTION),
                }
            },
            quote!(::vmstate_runtime::FieldLayout::Tmp),
        ),
        FieldKind::Skip => (
            quote!(::vmstate_runtime::FieldType::scalar("skipped", 0)),
            quote!(::vmstate_runtime::FieldLayout::Skipped),
        ),
    };
    quote! {
        ::vmstate_runtime::FieldDescription {
            name: #name,
            ty: #field_type,
            layout: #layout,
            version_id: #since,
            has_test: #has_test,
            has_validate: #has_validate,
        }
    }
}

/// Compile-time checks emitted next to the impl. Each is spanned at the offending
/// field so the error points at the user's code, not at generated code.
pub fn static_checks(c: &Container) -> TokenStream {
    let ident = c.ident;
    let (impl_generics, ty_generics, where_clause) = c.generics.split_for_impl();
    let mut checks = Vec::new();
    for f in &c.fields {
        let ty = f.ty;
        let check = match &f.kind {
            FieldKind::Plain | FieldKind::Buffer => Some(quote_spanned! {ty.span()=>
                ::vmstate_runtime::__private::assert_field::<#ty>();
            }),
            FieldKind::VarVec { elem, .. } | FieldKind::VarArray { elem, .. } => {
                Some(quote_spanned! {elem.span()=>
                    ::vmstate_runtime::__private::assert_field::<#elem>();
                })
            }
            FieldKind::List { elem, .. } => Some(quote_spanned! {elem.span()=>
                ::vmstate_runtime::__private::assert_subsection::<#elem>();
            }),
            _ => None,
        };
        checks.extend(check);
    }
    let parent = &c.name;
    for (i, s) in c.subsections.iter().enumerate() {
        let ty = s.ty;
        checks.push(quote_spanned! {ty.span()=>
            ::vmstate_runtime::__private::assert_subsection::<#ty>();
        });
        let field = s.ident.to_string();
        let prefix_msg = format!(
            "subsection `{field}`: its vmsd name must start with the parent's name \"{parent}\" \
             (QEMU's loader only recognises subsections carrying the parent's prefix)"
        );
        checks.push(quote_spanned! {ty.span()=>
            const _: () = ::core::assert!(
                ::vmstate_runtime::__private::str_starts_with(
                    <#ty as ::vmstate_runtime::VmState>::DESCRIPTION.name, #parent),
                #prefix_msg
            );
        });
        for earlier in &c.subsections[..i] {
            let ety = earlier.ty;
            let msg = format!(
                "duplicate subsection name: `{field}` and `{}` have the same vmsd name",
                earlier.ident
            );
            checks.push(quote_spanned! {ty.span()=>
                const _: () = ::core::assert!(
                    !::vmstate_runtime::__private::str_eq(
                        <#ty as ::vmstate_runtime::VmState>::DESCRIPTION.name,
                        <#ety as ::vmstate_runtime::VmState>::DESCRIPTION.name),
                    #msg
                );
            });
        }
    }
    quote! {
        impl #impl_generics #ident #ty_generics #where_clause {
            #[doc(hidden)]
            #[allow(dead_code, non_snake_case)]
            const fn __vmstate_static_checks() {
                #( #checks )*
            }
        }
    }
}
