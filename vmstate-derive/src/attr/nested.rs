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
            value_outside(
                cx,
                nv,
                key,
                LEN,
                ": the count field goes inside the parentheses",
            );
            return LenAttr {
                len: field_name(&nv.value),
            };
        }
        Some(syn::Meta::List(list)) => list,
    };
    let (len, mistakes) = inner_value(cx, key, list, LEN, |value| {
        let field = field_name(value);
        if field.is_none() {
            cx.error_spanned_by(
                value,
                format!(
                    "`{LEN}` takes the name of an earlier field holding the count, \
                     e.g. `{key}({LEN} = num_entries)`"
                ),
            );
        }
        field
    });
    if len.is_none() && !mistakes {
        return missing();
    }
    LenAttr { len }
}

/// Parses `subsection` or `subsection(needed = path)`.
pub fn subsection(cx: &Ctxt, meta: Option<&syn::Meta>, item: &TokenStream) -> SubsectionAttr {
    const ALWAYS: &str = " (or just `subsection` to always send it)";
    let list = match meta {
        Some(syn::Meta::Path(_)) => return SubsectionAttr::default(),
        None => {
            cx.error_spanned_by(item, format!("write `subsection({NEEDED} = path)`{ALWAYS}"));
            return SubsectionAttr::default();
        }
        Some(syn::Meta::NameValue(nv)) => {
            value_outside(cx, nv, "subsection", NEEDED, ALWAYS);
            return SubsectionAttr::default();
        }
        Some(syn::Meta::List(list)) => list,
    };
    let (needed, _) = inner_value(cx, "subsection", list, NEEDED, |value| match value {
        syn::Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => s.parse().map_err(|e| cx.syn_error(e)).ok(),
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{NEEDED}` takes the path of a `fn(&Self) -> bool`, \
                     e.g. `subsection({NEEDED} = tsr_needed)`"
                ),
            );
            None
        }
    });
    SubsectionAttr { needed }
}

/// `key = value` where `key(inner = value)` was meant; `why` ends the message.
fn value_outside(cx: &Ctxt, nv: &syn::MetaNameValue, key: &str, inner: &str, why: &str) {
    let value = &nv.value;
    cx.error_spanned_by(
        nv,
        format!("write `{key}({inner} = {})`{why}", quote::quote!(#value)),
    );
}

/// The value of `inner = ..` in `key(...)`, read by `read` (which reports a wrong
/// one). Any other item, a second `inner` and a list that does not parse are
/// reported too; the flag says whether anything was.
fn inner_value<T>(
    cx: &Ctxt,
    key: &str,
    list: &syn::MetaList,
    inner: &str,
    mut read: impl FnMut(&syn::Expr) -> Option<T>,
) -> (Option<T>, bool) {
    let items = match darling::ast::NestedMeta::parse_meta_list(list.tokens.clone()) {
        Ok(items) => items,
        Err(e) => {
            cx.syn_error(e);
            return (None, true);
        }
    };
    let mut value = None;
    let mut mistakes = false;
    for nested in items {
        match nested {
            darling::ast::NestedMeta::Meta(syn::Meta::NameValue(nv)) if nv.path.is_ident(inner) => {
                if value.is_some() {
                    cx.error_spanned_by(
                        &nv,
                        format!("`{inner}` is given twice in `{key}(..)`; keep one"),
                    );
                }
                match read(&nv.value) {
                    Some(v) => value = Some(v),
                    None => mistakes = true,
                }
            }
            other => {
                mistakes = true;
                unknown_nested(cx, key, &other, &[inner]);
            }
        }
    }
    (value, mistakes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of parsing `item` with `parse`.
    fn errors(
        item: TokenStream,
        parse: impl Fn(&Ctxt, Option<&syn::Meta>, &TokenStream),
    ) -> Vec<String> {
        let cx = Ctxt::new();
        let meta = syn::parse2::<syn::Meta>(item.clone()).ok();
        parse(&cx, meta.as_ref(), &item);
        cx.check()
            .err()
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect()
    }

    fn len_errors(item: TokenStream) -> Vec<String> {
        errors(item, |cx, meta, item| {
            len(cx, "varray", meta, item);
        })
    }

    fn subsection_errors(item: TokenStream) -> Vec<String> {
        errors(item, |cx, meta, item| {
            subsection(cx, meta, item);
        })
    }

    #[test]
    fn len_mistakes() {
        assert!(len_errors(quote::quote!(varray(len = n))).is_empty());
        assert_eq!(
            len_errors(quote::quote!(varray = n)),
            ["write `varray(len = n)`: the count field goes inside the parentheses"]
        );
        assert_eq!(
            len_errors(quote::quote!(varray(len = 1))),
            ["`len` takes the name of an earlier field holding the count, e.g. `varray(len = num_entries)`"]
        );
        assert_eq!(
            len_errors(quote::quote!(varray(len = a, len = b))),
            ["`len` is given twice in `varray(..)`; keep one"]
        );
        assert_eq!(
            len_errors(quote::quote!(varray())),
            ["`varray` needs the name of the earlier field that holds the count: `varray(len = count_field)`"]
        );
        assert_eq!(
            len_errors(quote::quote!(varray("n"))),
            ["`varray(..)` takes `len = ..`"]
        );
    }

    #[test]
    fn subsection_mistakes() {
        assert!(subsection_errors(quote::quote!(subsection)).is_empty());
        assert!(subsection_errors(quote::quote!(subsection(needed = "a::f"))).is_empty());
        assert_eq!(
            subsection_errors(quote::quote!(subsection = f)),
            ["write `subsection(needed = f)` (or just `subsection` to always send it)"]
        );
        assert_eq!(
            subsection_errors(quote::quote!(subsection(needed = 1))),
            ["`needed` takes the path of a `fn(&Self) -> bool`, e.g. `subsection(needed = tsr_needed)`"]
        );
        assert_eq!(
            subsection_errors(quote::quote!(subsection(when = f))),
            ["unknown key `when` in `subsection(..)`; it takes `needed = ..`"]
        );
    }
}
