//! The static description (`DESCRIPTION`) and the compile-time checks that need
//! resolved types: field types implement `VmStateField`, subsection types implement
//! `VmState`, subsection names are unique and carry the parent's name as prefix.
//!
//! QEMU's info names and sizes are not spelled here: a field's `FieldType` comes
//! from its Rust type (`<T as VmStateField>::FIELD_TYPE`) or, for the encodings an
//! attribute selects (`timer`, `bitmap`, `equal`, ...), from the runtime's constant
//! for that encoding.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::fallback::FALLBACK_NAME;
use super::paths::Paths;
use crate::ast::{Container, Field, FieldKind};
use crate::ctxt::user_span;

pub fn description(c: &Container, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let name = &c.name;
    let version = c.version;
    let min = c.minimum_version;
    let priority = &c.priority;
    let fields = c.fields.iter().map(|f| field_description(f, paths));
    let subsections = c.subsections.iter().map(|s| {
        let field = s.ident.to_string();
        let description = description_of(s.ty, paths);
        quote!(#p::SubsectionDescription { field: #field, description: #description })
    });
    let h = &c.hooks;
    let (pre_save, post_save, pre_load, post_load) = (
        h.pre_save.is_some(),
        h.post_save.is_some(),
        h.pre_load.is_some(),
        h.post_load.is_some(),
    );
    quote! {
        const DESCRIPTION: &'static #p::VmStateDescription = &#p::VmStateDescription {
            name: #name,
            version_id: #version,
            minimum_version_id: #min,
            priority: #p::MigrationPriority::#priority,
            fields: &[ #( #fields ),* ],
            subsections: &[ #( #subsections ),* ],
            hooks: #p::Hooks { pre_save: #pre_save, post_save: #post_save, pre_load: #pre_load, post_load: #post_load },
        };
    }
}

fn field_description(f: &Field, paths: &Paths) -> TokenStream {
    let p = paths.private();
    let name = &f.wire_name;
    let ty = f.ty;
    let var_array = |elem, len: &syn::Ident, max: TokenStream, buffer: bool| {
        let count_field = len.to_string();
        let t = if buffer {
            quote!(#p::buffer_type(1))
        } else {
            field_type_of(elem, paths)
        };
        (
            t,
            Some(quote!(#p::FieldLayout::VarArray { count_field: #count_field, max: #max })),
        )
    };
    let (field_type, layout) = match &f.kind {
        FieldKind::Plain => (field_type_of(ty, paths), None),
        FieldKind::Buffer => (quote!(#p::buffer_type(#p::size_of::<#ty>())), None),
        FieldKind::Equal => {
            let t = field_type_of(ty, paths);
            (quote!(#p::equal_type(#t)), None)
        }
        FieldKind::PositiveLe => (quote!(#p::POSITIVE_LE_TYPE), None),
        FieldKind::VarVec {
            elem,
            len,
            max,
            buffer,
        } => var_array(elem, len, quote!(#max), *buffer),
        FieldKind::VarArray {
            elem,
            n,
            len,
            max,
            buffer,
        } => {
            let max = match max {
                Some(m) => quote!(#m),
                None => quote!((#n) as #p::usize),
            };
            var_array(elem, len, max, *buffer)
        }
        FieldKind::Bitmap { len, max } => {
            let bits_field = len.to_string();
            (
                quote!(#p::BITMAP_TYPE),
                Some(quote!(#p::FieldLayout::Bitmap { bits_field: #bits_field, max_bits: #max })),
            )
        }
        FieldKind::List { elem, max } => {
            let elem = description_of(elem, paths);
            (
                quote!(#p::list_type(#elem)),
                Some(quote!(#p::FieldLayout::List { max: #max })),
            )
        }
        FieldKind::Unused(n) => (
            quote!(#p::unused_type(#n)),
            Some(quote!(#p::FieldLayout::Unused { size: #n })),
        ),
        FieldKind::Timer => (quote!(#p::TIMER_TYPE), None),
        FieldKind::WithTmp(tmp) => {
            let tmp = description_of(tmp, paths);
            (
                quote!(#p::tmp_type(#tmp)),
                Some(quote!(#p::FieldLayout::Tmp)),
            )
        }
        FieldKind::Skip => (
            quote!(#p::SKIPPED_TYPE),
            Some(quote!(#p::FieldLayout::Skipped)),
        ),
    };
    // Without an explicit layout, the type's own: an array, or a single value.
    let mut d = match layout {
        None => quote!(#p::FieldDescription::of_type(#name, #field_type)),
        Some(layout) => quote!(#p::FieldDescription::new(#name, #field_type, #layout)),
    };
    if f.since != 0 {
        let since = f.since;
        d = quote!(#d.since(#since));
    }
    if f.test.is_some() {
        d = quote!(#d.with_test());
    }
    if f.validate.is_some() {
        d = quote!(#d.with_validate());
    }
    d
}

/// Compile-time checks emitted next to the impl. Each is spanned at the offending
/// type so the error points at the user's code, not at generated code. The trait
/// checks use exactly the expressions the description uses (`<T as VmStateField>
/// ::FIELD_TYPE`, `<T as VmState>::DESCRIPTION`), so rustc reports one error per
/// offending type instead of one per use.
pub fn static_checks(c: &Container, paths: &Paths) -> TokenStream {
    let ident = c.ident;
    let (impl_generics, ty_generics, where_clause) = c.generics.split_for_impl();
    let mut checks = vec![type_checks(c, paths)];
    let parent = &c.name;
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
        let p = paths.at(user_span(ty));
        let desc = description_of(ty, paths);
        let field = s.ident.to_string();
        let prefix_msg = format!(
            "subsection `{field}`: its vmsd name must start with the parent's name \"{parent}\" \
             (QEMU's loader only recognises subsections carrying the parent's prefix); \
             name it e.g. \"{parent}/{field}\""
        );
        // A type whose own derive failed has the fallback name: already reported.
        checks.push(quote_spanned! {user_span(ty)=>
            const _: () = #p::assert!(
                #p::str_eq(#desc.name, #FALLBACK_NAME)
                    || #p::str_starts_with(#desc.name, #parent),
                #prefix_msg
            );
        });
        for earlier in c.subsections[..i].iter().filter(|e| checkable(e.ty)) {
            let edesc = description_of(earlier.ty, paths);
            let msg = format!(
                "duplicate subsection name: the types of `{field}` and `{}` have the same vmsd \
                 name, so the loader could not tell them apart; give each its own \
                 #[vmstate(name = ..)]",
                earlier.ident
            );
            checks.push(quote_spanned! {user_span(ty)=>
                const _: () = #p::assert!(
                    !#p::str_eq(#desc.name, #edesc.name) || #p::str_eq(#desc.name, #FALLBACK_NAME),
                    #msg
                );
            });
        }
    }
    quote! {
        #[automatically_derived]
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
/// They open `save_with` and `load` as well as the static checks. rustc reports an
/// unsatisfied bound once per function body and span, so with these first, the
/// later uses in the same body (helper calls whose bounds would add "required by a
/// bound in `save_list`" and the like) add no further errors, and the same error in
/// different bodies is identical and shown once.
pub fn type_checks(c: &Container, paths: &Paths) -> TokenStream {
    let mut checks = Vec::new();
    for f in &c.fields {
        let check = match &f.kind {
            FieldKind::Plain | FieldKind::Buffer | FieldKind::Equal => {
                Some(field_type_of(f.ty, paths))
            }
            FieldKind::VarVec {
                elem,
                buffer: false,
                ..
            }
            | FieldKind::VarArray {
                elem,
                buffer: false,
                ..
            } => Some(field_type_of(elem, paths)),
            FieldKind::List { elem, .. } => Some(description_of(elem, paths)),
            FieldKind::WithTmp(tmp) => {
                let p = paths.at(user_span(tmp));
                Some(quote_spanned! {user_span(tmp)=> <#tmp as #p::VmStateTmp<Self>>::from_parent })
            }
            _ => None,
        };
        checks.extend(check);
    }
    checks.extend(c.subsections.iter().map(|s| description_of(s.ty, paths)));
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
pub fn field_type_of(ty: &syn::Type, paths: &Paths) -> TokenStream {
    let p = paths.at(user_span(ty));
    quote_spanned! {user_span(ty)=> <#ty as #p::VmStateField>::FIELD_TYPE }
}

/// `<ty as VmState>::DESCRIPTION`, spanned at `ty`.
pub fn description_of(ty: &syn::Type, paths: &Paths) -> TokenStream {
    let p = paths.at(user_span(ty));
    quote_spanned! {user_span(ty)=> <#ty as #p::VmState>::DESCRIPTION }
}
