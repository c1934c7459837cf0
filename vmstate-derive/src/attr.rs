//! Attribute receivers: what `#[vmstate(...)]` may say, parsed by darling.
//!
//! Only syntax is handled here (unknown keys with "did you mean", duplicate keys,
//! value types). Meaning (conflicts, versions, length fields) is checked in
//! `check.rs`, where all problems are accumulated.

use darling::util::{Flag, SpannedValue};
use darling::{FromDeriveInput, FromField, FromMeta, FromVariant};

/// `#[vmstate(...)]` on the struct or enum.
#[derive(FromDeriveInput)]
#[darling(
    attributes(vmstate),
    supports(struct_named, enum_unit),
    forward_attrs(repr)
)]
pub struct ContainerAttrs {
    pub ident: syn::Ident,
    pub generics: syn::Generics,
    pub data: darling::ast::Data<VariantAttrs, FieldAttrs>,
    /// Forwarded `#[repr(...)]` (enums need an integer representation).
    pub attrs: Vec<syn::Attribute>,

    /// The vmsd name; defaults to the type name.
    pub name: Option<SpannedValue<String>>,
    /// Current version (QEMU `version_id`); defaults to 0 as in QEMU.
    pub version: Option<SpannedValue<u32>>,
    /// Oldest loadable version; defaults to `version`.
    pub minimum_version: Option<SpannedValue<u32>>,
    /// A `MigrationPriority` variant.
    pub priority: Option<syn::Ident>,
    /// `fn(&Self) -> Result<(), E>`.
    pub pre_save: Option<syn::Path>,
    /// `fn(&Self) -> Result<(), E>`.
    pub post_save: Option<syn::Path>,
    /// `fn(&mut Self) -> Result<(), E>`.
    pub pre_load: Option<syn::Path>,
    /// `fn(&mut Self, version_id: u32) -> Result<(), E>`.
    pub post_load: Option<syn::Path>,
}

/// One unit variant of an enum field type.
#[derive(FromVariant)]
#[darling(attributes(vmstate))]
pub struct VariantAttrs {
    pub ident: syn::Ident,
}

/// `len = field` inside `varray(...)`, `vbuffer(...)` and `bitmap(...)`.
///
/// Parsed by hand so that every mistake inside the parentheses is reported at its
/// own tokens. Parsing never fails: mistakes are kept in `errors` and reported by
/// `check.rs` with everything else (a missing `len` too, since check knows the key).
pub struct LenAttr {
    pub len: Option<syn::Ident>,
    pub errors: Vec<syn::Error>,
}

impl FromMeta for LenAttr {
    fn from_meta(item: &syn::Meta) -> darling::Result<Self> {
        let key = path_name(item.path());
        let mut acc = Vec::new();
        let list = match item {
            syn::Meta::Path(_) => {
                return Ok(LenAttr {
                    len: None,
                    errors: acc,
                })
            }
            syn::Meta::NameValue(nv) => {
                let value = &nv.value;
                acc.push(syn::Error::new_spanned(
                    nv,
                    format!(
                        "write `{key}(len = {})`: the count field goes inside the parentheses",
                        quote::quote!(#value)
                    ),
                ));
                return Ok(LenAttr {
                    len: field_name(value),
                    errors: acc,
                });
            }
            syn::Meta::List(list) => list,
        };
        let mut len = None;
        let items = match darling::ast::NestedMeta::parse_meta_list(list.tokens.clone()) {
            Ok(items) => items,
            Err(e) => {
                acc.push(e);
                Vec::new()
            }
        };
        for nested in items {
            match nested {
                darling::ast::NestedMeta::Meta(syn::Meta::NameValue(nv))
                    if nv.path.is_ident("len") =>
                {
                    if len.is_some() {
                        acc.push(syn::Error::new_spanned(
                            &nv,
                            format!("`len` is given twice in `{key}(..)`; keep one"),
                        ));
                    }
                    match field_name(&nv.value) {
                        Some(ident) => len = Some(ident),
                        None => acc.push(syn::Error::new_spanned(
                            &nv.value,
                            format!(
                                "`len` takes the name of an earlier field holding the count, \
                                 e.g. `{key}(len = num_entries)`"
                            ),
                        )),
                    }
                }
                other => acc.push(unknown_nested(&key, &other, &["len"])),
            }
        }
        Ok(LenAttr { len, errors: acc })
    }
}

/// `subsection(needed = path)`, or just `subsection` (always sent). Like
/// [`LenAttr`], parsing never fails; mistakes are kept in `errors`.
#[derive(Default)]
pub struct SubsectionAttr {
    /// `fn(&Self) -> bool`; without it the subsection is always sent.
    pub needed: Option<syn::Path>,
    pub errors: Vec<syn::Error>,
}

impl FromMeta for SubsectionAttr {
    fn from_meta(item: &syn::Meta) -> darling::Result<Self> {
        let mut acc = Vec::new();
        let list = match item {
            syn::Meta::Path(_) => return Ok(Self::default()),
            syn::Meta::NameValue(nv) => {
                let value = &nv.value;
                acc.push(syn::Error::new_spanned(
                    nv,
                    format!(
                        "write `subsection(needed = {})` (or just `subsection` to always send it)",
                        quote::quote!(#value)
                    ),
                ));
                return Ok(SubsectionAttr {
                    needed: None,
                    errors: acc,
                });
            }
            syn::Meta::List(list) => list,
        };
        let mut needed = None;
        let items = match darling::ast::NestedMeta::parse_meta_list(list.tokens.clone()) {
            Ok(items) => items,
            Err(e) => {
                acc.push(e);
                Vec::new()
            }
        };
        for nested in items {
            match nested {
                darling::ast::NestedMeta::Meta(syn::Meta::NameValue(nv))
                    if nv.path.is_ident("needed") =>
                {
                    if needed.is_some() {
                        acc.push(syn::Error::new_spanned(
                            &nv,
                            "`needed` is given twice in `subsection(..)`; keep one",
                        ));
                    }
                    match &nv.value {
                        syn::Expr::Path(p) if p.qself.is_none() => needed = Some(p.path.clone()),
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => match s.parse() {
                            Ok(p) => needed = Some(p),
                            Err(e) => acc.push(e),
                        },
                        other => acc.push(syn::Error::new_spanned(
                            other,
                            "`needed` takes the path of a `fn(&Self) -> bool`, \
                             e.g. `subsection(needed = tsr_needed)`",
                        )),
                    }
                }
                other => acc.push(unknown_nested("subsection", &other, &["needed"])),
            }
        }
        Ok(SubsectionAttr {
            needed,
            errors: acc,
        })
    }
}

fn path_name(path: &syn::Path) -> String {
    path.get_ident()
        .map_or_else(|| quote::quote!(#path).to_string(), |i| i.to_string())
}

/// `count` or `"count"` as a field name.
fn field_name(value: &syn::Expr) -> Option<syn::Ident> {
    match value {
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => s.parse().ok(),
        _ => None,
    }
}

/// An item inside `key(...)` that is not one of `expected`.
fn unknown_nested(key: &str, item: &darling::ast::NestedMeta, expected: &[&str]) -> syn::Error {
    let usage = expected
        .iter()
        .map(|e| format!("`{e} = ..`"))
        .collect::<Vec<_>>()
        .join(", ");
    match item {
        darling::ast::NestedMeta::Meta(m) => {
            let name = path_name(m.path());
            let hint = match crate::diag::closest(&name, expected.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("it takes {usage}"),
            };
            syn::Error::new_spanned(
                m.path(),
                format!("unknown key `{name}` in `{key}(..)`; {hint}"),
            )
        }
        darling::ast::NestedMeta::Lit(l) => {
            syn::Error::new_spanned(l, format!("`{key}(..)` takes {usage}"))
        }
    }
}

/// `#[vmstate(...)]` on a field.
#[derive(FromField)]
#[darling(attributes(vmstate))]
pub struct FieldAttrs {
    pub ident: Option<syn::Ident>,
    pub ty: syn::Type,

    /// On the wire only for versions >= N (QEMU `_V`).
    pub since: Option<SpannedValue<u32>>,
    /// `fn(&Self, version_id: u32) -> bool` decides presence (QEMU `_TEST`).
    pub test: Option<syn::Path>,
    /// This field is a subsection.
    pub subsection: Option<SpannedValue<SubsectionAttr>>,
    /// A `WithTmp<T>` marker: temporary migration view (VMSTATE_WITH_TMP).
    pub with_tmp: Flag,
    /// Not migrated.
    pub skip: Flag,
    /// N bytes of padding (VMSTATE_UNUSED).
    pub unused: Option<SpannedValue<usize>>,
    /// Variable array whose count is an earlier field.
    pub varray: Option<SpannedValue<LenAttr>>,
    /// Variable byte buffer whose size is an earlier field.
    pub vbuffer: Option<SpannedValue<LenAttr>>,
    /// Bitmap whose bit count is an earlier field.
    pub bitmap: Option<SpannedValue<LenAttr>>,
    /// QTAILQ/QLIST-style list.
    pub list: Flag,
    /// Bound on a count read from the stream.
    pub max: Option<SpannedValue<usize>>,
    /// Load fails unless the incoming value equals ours (*_EQUAL).
    pub equal: Flag,
    /// 0 <= incoming <= current (INT32_POSITIVE_LE).
    pub positive_le: Flag,
    /// `Option<u64>` expiry in ns, all ones = disarmed.
    pub timer: Flag,
    /// Describe a `[u8; N]` as an opaque "buffer" (VMSTATE_BUFFER).
    pub buffer: Flag,
    /// `fn(&Self, version_id: u32) -> bool` run after this field loads (VMSTATE_VALIDATE).
    pub validate: Option<syn::Path>,
    /// The field's name in descriptions and errors when it differs from the Rust
    /// name (QEMU names such as `queue.rptr`).
    pub rename: Option<String>,
}
