//! Keys with a list of their own: `varray(len = f)` (and `vbuffer`, `bitmap`) and
//! `subsection(needed = path)`. Every mistake inside the parentheses is reported at
//! its own tokens, and parsing never fails, so the checks still run on the rest.

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;
use crate::suggest::closest;
use crate::symbol::{LEN, NEEDED};

/// `len = field` inside `varray(...)`, `vbuffer(...)` and `bitmap(...)`.
pub struct LenAttr {
    /// The count field; `None` after a mistake (already reported).
    pub len: Option<syn::Ident>,
}

/// `subsection(needed = path)`, or just `subsection` (always sent).
#[derive(Default)]
pub struct SubsectionAttr {
    /// `fn(&Self) -> bool`; without it the subsection is always sent.
    pub needed: Option<syn::Path>,
}

/// Parses `key(len = field)`; `meta` is `None` when `item` is not even a meta item.
pub fn len(cx: &Ctxt, key: &str, meta: Option<&syn::Meta>, item: &TokenStream) -> LenAttr {
    let missing = || {
        cx.error_spanned_by(
            item,
            format!(
                "`{key}` needs the name of the earlier field that holds the count: \
                 `{key}({LEN} = count_field)`"
            ),
        );
        LenAttr { len: None }
    };
    let list = match meta {
        None | Some(syn::Meta::Path(_)) => return missing(),
        Some(syn::Meta::NameValue(nv)) => {
            let value = &nv.value;
            cx.error_spanned_by(
                nv,
                format!(
                    "write `{key}({LEN} = {})`: the count field goes inside the parentheses",
                    quote::quote!(#value)
                ),
            );
            return LenAttr {
                len: field_name(value),
            };
        }
        Some(syn::Meta::List(list)) => list,
    };
    let mut len = None;
    let mut mistakes = false;
    for nested in items(cx, list, &mut mistakes) {
        match nested {
            darling::ast::NestedMeta::Meta(syn::Meta::NameValue(nv)) if nv.path.is_ident(LEN) => {
                if len.is_some() {
                    cx.error_spanned_by(
                        &nv,
                        format!("`{LEN}` is given twice in `{key}(..)`; keep one"),
                    );
                }
                match field_name(&nv.value) {
                    Some(ident) => len = Some(ident),
                    None => {
                        mistakes = true;
                        cx.error_spanned_by(
                            &nv.value,
                            format!(
                                "`{LEN}` takes the name of an earlier field holding the count, \
                                 e.g. `{key}({LEN} = num_entries)`"
                            ),
                        );
                    }
                }
            }
            other => {
                mistakes = true;
                unknown_nested(cx, key, &other, &[LEN]);
            }
        }
    }
    if len.is_none() && !mistakes {
        return missing();
    }
    LenAttr { len }
}

/// Parses `subsection` or `subsection(needed = path)`.
pub fn subsection(cx: &Ctxt, meta: Option<&syn::Meta>, item: &TokenStream) -> SubsectionAttr {
    let list = match meta {
        Some(syn::Meta::Path(_)) => return SubsectionAttr::default(),
        None => {
            cx.error_spanned_by(
                item,
                format!(
                    "write `subsection({NEEDED} = path)` (or just `subsection` to always send it)"
                ),
            );
            return SubsectionAttr::default();
        }
        Some(syn::Meta::NameValue(nv)) => {
            let value = &nv.value;
            cx.error_spanned_by(
                nv,
                format!(
                    "write `subsection({NEEDED} = {})` (or just `subsection` to always send it)",
                    quote::quote!(#value)
                ),
            );
            return SubsectionAttr::default();
        }
        Some(syn::Meta::List(list)) => list,
    };
    let mut needed = None;
    let mut mistakes = false;
    for nested in items(cx, list, &mut mistakes) {
        match nested {
            darling::ast::NestedMeta::Meta(syn::Meta::NameValue(nv))
                if nv.path.is_ident(NEEDED) =>
            {
                if needed.is_some() {
                    cx.error_spanned_by(
                        &nv,
                        format!("`{NEEDED}` is given twice in `subsection(..)`; keep one"),
                    );
                }
                match &nv.value {
                    syn::Expr::Path(p) if p.qself.is_none() => needed = Some(p.path.clone()),
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => match s.parse() {
                        Ok(p) => needed = Some(p),
                        Err(e) => cx.syn_error(e),
                    },
                    other => cx.error_spanned_by(
                        other,
                        format!(
                            "`{NEEDED}` takes the path of a `fn(&Self) -> bool`, \
                             e.g. `subsection({NEEDED} = tsr_needed)`"
                        ),
                    ),
                }
            }
            other => unknown_nested(cx, "subsection", &other, &[NEEDED]),
        }
    }
    SubsectionAttr { needed }
}

/// The items of `key(...)`; a list that does not parse is reported (and counts
/// as a mistake).
fn items(cx: &Ctxt, list: &syn::MetaList, mistakes: &mut bool) -> Vec<darling::ast::NestedMeta> {
    darling::ast::NestedMeta::parse_meta_list(list.tokens.clone()).unwrap_or_else(|e| {
        *mistakes = true;
        cx.syn_error(e);
        Vec::new()
    })
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

/// Reports an item inside `key(...)` that is not one of `expected`.
fn unknown_nested(cx: &Ctxt, key: &str, item: &darling::ast::NestedMeta, expected: &[&str]) {
    let usage = expected
        .iter()
        .map(|e| format!("`{e} = ..`"))
        .collect::<Vec<_>>()
        .join(", ");
    match item {
        darling::ast::NestedMeta::Meta(m) => {
            let name = path_name(m.path());
            let hint = match closest(&name, expected.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("it takes {usage}"),
            };
            cx.error_spanned_by(
                m.path(),
                format!("unknown key `{name}` in `{key}(..)`; {hint}"),
            );
        }
        darling::ast::NestedMeta::Lit(l) => {
            cx.error_spanned_by(l, format!("`{key}(..)` takes {usage}"))
        }
    }
}
