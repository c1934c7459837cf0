//! The static description (`DESCRIPTION`) and the compile-time checks that need
//! resolved types: field types implement `VmStateField`, subsection types implement
//! `VmState`, subsection names are unique and carry the parent's name as prefix.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::ctxt::user_span;

use crate::ast::{Container, Field, FieldKind};

pub fn description(c: &Container) -> TokenStream {
    let name = &c.name;
    let version = c.version;
    let min = c.minimum_version;
    let priority = &c.priority;
    let fields = c.fields.iter().map(field_description);
    let subsections = c.subsections.iter().map(|s| {
        let field = s.ident.to_string();
        let description = description_of(s.ty);
        quote! {
            ::vmstate_runtime::SubsectionDescription {
                field: #field,
                description: #description,
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
    let name = &f.wire_name;
    let ty = f.ty;
    let since = f.since;
    let has_test = f.test.is_some();
    let has_validate = f.validate.is_some();
    let ft = field_type_of;
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
        FieldKind::List { elem, max } => {
            let elem_desc = description_of(elem);
            (
                quote! {
                    ::vmstate_runtime::FieldType {
                        info: "qtailq",
                        size: ::core::option::Option::None,
                        array_len: ::core::option::Option::None,
                        nested: ::core::option::Option::Some(#elem_desc),
                    }
                },
                quote!(::vmstate_runtime::FieldLayout::List { max: #max }),
            )
        }
        FieldKind::Unused(n) => (
            quote!(::vmstate_runtime::FieldType::scalar("unused_buffer", #n)),
            quote!(::vmstate_runtime::FieldLayout::Unused { size: #n }),
        ),
        FieldKind::Timer => (
            quote!(::vmstate_runtime::FieldType::scalar("timer", 8)),
            quote!(::vmstate_runtime::FieldLayout::Single),
        ),
        FieldKind::WithTmp(tmp) => {
            let tmp_desc = description_of(tmp);
            (
                quote! {
                    ::vmstate_runtime::FieldType {
                        info: "tmp",
                        size: #tmp_desc.fixed_body_size(),
                        array_len: ::core::option::Option::None,
                        nested: ::core::option::Option::Some(#tmp_desc),
                    }
                },
                quote!(::vmstate_runtime::FieldLayout::Tmp),
            )
        }
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
/// type so the error points at the user's code, not at generated code. The trait
/// checks use exactly the expressions the description uses (`<T as VmStateField>
/// ::FIELD_TYPE`, `<T as VmState>::DESCRIPTION`), so rustc reports one error per
/// offending type instead of one per use.
pub fn static_checks(c: &Container) -> TokenStream {
    let ident = c.ident;
    let (impl_generics, ty_generics, where_clause) = c.generics.split_for_impl();
    let mut checks = vec![type_checks(c)];
    let parent = &c.name;
    let fallback = crate::FALLBACK_NAME;
    // The name checks are `const _` items, evaluated eagerly; such items cannot
    // use the struct's generic parameters (E0401), so a subsection whose type
    // mentions them is not checked here.
    let generic_params: Vec<String> = c
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(t.ident.to_string()),
            syn::GenericParam::Const(k) => Some(k.ident.to_string()),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    let checkable = |ty: &syn::Type| !mentions_any(quote!(#ty), &generic_params);
    for (i, s) in c.subsections.iter().enumerate() {
        let ty = s.ty;
        if !checkable(ty) {
            continue;
        }
        let desc = description_of(ty);
        let field = s.ident.to_string();
        let prefix_msg = format!(
            "subsection `{field}`: its vmsd name must start with the parent's name \"{parent}\" \
             (QEMU's loader only recognises subsections carrying the parent's prefix); \
             name it e.g. \"{parent}/{field}\""
        );
        // A type whose own derive failed has the fallback name: already reported.
        checks.push(quote_spanned! {user_span(ty)=>
            const _: () = ::core::assert!(
                ::vmstate_runtime::__private::str_eq(#desc.name, #fallback)
                    || ::vmstate_runtime::__private::str_starts_with(#desc.name, #parent),
                #prefix_msg
            );
        });
        for earlier in c.subsections[..i].iter().filter(|e| checkable(e.ty)) {
            let edesc = description_of(earlier.ty);
            let msg = format!(
                "duplicate subsection name: the types of `{field}` and `{}` have the same vmsd \
                 name, so the loader could not tell them apart; give each its own \
                 #[vmstate(name = ..)]",
                earlier.ident
            );
            checks.push(quote_spanned! {user_span(ty)=>
                const _: () = ::core::assert!(
                    !::vmstate_runtime::__private::str_eq(#desc.name, #edesc.name)
                        || ::vmstate_runtime::__private::str_eq(#desc.name, #fallback),
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

/// Statements that name every trait the field and subsection types must implement,
/// each spanned at the user's type: `let _ = <T as VmStateField>::FIELD_TYPE;`.
///
/// They are emitted at the start of `save` and `load` as well as in the static
/// checks. rustc reports an unsatisfied bound once per function body and span, so
/// with these first, the later uses in the same body (helper calls whose bounds would
/// add "required by a bound in `save_list`" and the like) add no further errors,
/// and the same error in different bodies is identical and shown once.
pub fn type_checks(c: &Container) -> TokenStream {
    let mut checks = Vec::new();
    for f in &c.fields {
        let check = match &f.kind {
            FieldKind::Plain | FieldKind::Buffer | FieldKind::Equal => Some(field_type_of(f.ty)),
            FieldKind::VarVec {
                elem,
                buffer: false,
                ..
            }
            | FieldKind::VarArray {
                elem,
                buffer: false,
                ..
            } => Some(field_type_of(elem)),
            FieldKind::List { elem, .. } => Some(description_of(elem)),
            FieldKind::WithTmp(tmp) => Some(quote_spanned! {user_span(tmp)=>
                <#tmp as ::vmstate_runtime::VmStateTmp<Self>>::from_parent
            }),
            _ => None,
        };
        checks.extend(check);
    }
    checks.extend(c.subsections.iter().map(|s| description_of(s.ty)));
    quote! { #( let _ = #checks; )* }
}

/// Whether `tokens` contain one of `names` as an identifier (or `Self`).
fn mentions_any(tokens: TokenStream, names: &[String]) -> bool {
    tokens.into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) => i == "Self" || names.iter().any(|n| i == n),
        proc_macro2::TokenTree::Group(g) => mentions_any(g.stream(), names),
        _ => false,
    })
}

/// `<ty as VmStateField>::FIELD_TYPE`, spanned at `ty`. Every use of a field type's
/// encoding goes through this one expression so a missing impl is reported once.
pub fn field_type_of(ty: &syn::Type) -> TokenStream {
    quote_spanned! {user_span(ty)=> <#ty as ::vmstate_runtime::VmStateField>::FIELD_TYPE }
}

/// `<ty as VmState>::DESCRIPTION`, spanned at `ty`.
pub fn description_of(ty: &syn::Type) -> TokenStream {
    quote_spanned! {user_span(ty)=> <#ty as ::vmstate_runtime::VmState>::DESCRIPTION }
}
