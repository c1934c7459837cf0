//! A key's value, parsed by the form the symbol table gives the key (darling's
//! `FromMeta` does the parsing); a value of the wrong form is reported at the value.

use darling::FromMeta;
use proc_macro2::{TokenStream, TokenTree};

use super::nested::{self, LenAttr, SubsectionAttr};
use crate::ctxt::Ctxt;
use crate::symbol::{Key, Kind};

/// A parsed value; the variant is the one the key's [`Kind`] calls for.
pub enum Value {
    Flag,
    U32(u32),
    Usize(usize),
    Str(String),
    Path(syn::Path),
    Ident(syn::Ident),
    Len(LenAttr),
    Subsection(SubsectionAttr),
}

/// Parses the value of `item` (`key ...`). On a wrong form the error is reported
/// and the result is what to go on with: a stand-in for keys whose presence the
/// checks still need (a flag, an integer read as 0), or nothing.
pub fn parse(cx: &Ctxt, key: &Key, item: &TokenStream) -> Result<Value, Option<Value>> {
    let name = key.name;
    let rest: Vec<TokenTree> = item.clone().into_iter().skip(1).collect();
    // `key = value` → the value's tokens.
    let value: Option<TokenStream> = match rest.first() {
        Some(TokenTree::Punct(p)) if p.as_char() == '=' => {
            Some(rest[1..].iter().cloned().collect())
        }
        _ => None,
    };
    let written = value.clone().filter(|v| !v.is_empty());
    let meta = syn::parse2::<syn::Meta>(item.clone()).ok();
    let name_value = meta
        .as_ref()
        .filter(|m| matches!(m, syn::Meta::NameValue(_)));
    let example = format!("`{name} = {}`", key.example);
    match key.kind {
        Kind::Flag => {
            if rest.is_empty() {
                return Ok(Value::Flag);
            }
            cx.error_spanned_by(
                item,
                format!("`{name}` takes no value: write just `{name}`"),
            );
            Err(Some(Value::Flag))
        }
        Kind::U32 | Kind::Usize => {
            let parsed = name_value.and_then(|m| match key.kind {
                Kind::U32 => u32::from_meta(m).ok().map(Value::U32),
                _ => usize::from_meta(m).ok().map(Value::Usize),
            });
            if let Some(n) = parsed {
                return Ok(n);
            }
            match &written {
                Some(v) => cx.error_spanned_by(
                    v,
                    format!("`{name}` takes a non-negative integer, e.g. {example}"),
                ),
                None => {
                    cx.error_spanned_by(item, format!("`{name}` needs a value, e.g. {example}"))
                }
            }
            // Read as 0, so the checks see the key.
            Err(Some(match key.kind {
                Kind::U32 => Value::U32(0),
                _ => Value::Usize(0),
            }))
        }
        Kind::Str => match name_value.and_then(|m| String::from_meta(m).ok()) {
            Some(s) => Ok(Value::Str(s)),
            None => {
                cx.error_spanned_by(
                    written.unwrap_or_else(|| item.clone()),
                    format!("`{name}` takes a string, e.g. {example}"),
                );
                Err(None)
            }
        },
        Kind::Path { takes } | Kind::Ident { takes } => {
            let parsed = name_value.filter(|m| !has_qself(m)).and_then(|m| {
                if matches!(key.kind, Kind::Ident { .. }) {
                    syn::Ident::from_meta(m).ok().map(Value::Ident)
                } else {
                    syn::Path::from_meta(m).ok().map(Value::Path)
                }
            });
            parsed.ok_or_else(|| {
                cx.error_spanned_by(
                    written.unwrap_or_else(|| item.clone()),
                    format!("`{name}` takes {takes}, e.g. {example}"),
                );
                None
            })
        }
        Kind::Len => Ok(Value::Len(nested::len(cx, name, meta.as_ref(), item))),
        Kind::Subsection => Ok(Value::Subsection(nested::subsection(
            cx,
            meta.as_ref(),
            item,
        ))),
    }
}

/// `key = <T as Trait>::f`: a qualified path, which no key takes.
fn has_qself(meta: &syn::Meta) -> bool {
    let syn::Meta::NameValue(nv) = meta else {
        return false;
    };
    let mut value = &nv.value;
    while let syn::Expr::Group(g) = value {
        value = &g.expr;
    }
    matches!(value, syn::Expr::Path(p) if p.qself.is_some())
}
