//! Diagnostics support: an error accumulator whose errors can cover a whole range
//! of tokens (`since = 3`, `Vec<u32>`, not just their first token), and a syntactic
//! pre-pass over the raw input that runs before darling:
//!
//! * shape checks (unions, tuple and unit structs, enum variants with data), each
//!   reported at the offending tokens rather than at the `#[derive]`;
//! * unknown and duplicated `#[vmstate(...)]` keys, with a "did you mean" hint and
//!   a note when the key belongs on the struct rather than a field (or vice versa).
//!   These items are removed before darling sees the input, so the semantic checks
//!   still run and every mistake of one derive is reported in one go;
//! * the tokens of every key, so later errors can point at `since = 3` as a whole.

use std::fmt::Display;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;

/// Keys of `#[vmstate(...)]` on the struct.
pub const CONTAINER_KEYS: &[&str] = &[
    "name",
    "version",
    "minimum_version",
    "priority",
    "pre_save",
    "post_save",
    "pre_load",
    "post_load",
];

/// Keys of `#[vmstate(...)]` on a field.
pub const FIELD_KEYS: &[&str] = &[
    "since",
    "test",
    "subsection",
    "with_tmp",
    "skip",
    "unused",
    "varray",
    "vbuffer",
    "bitmap",
    "list",
    "max",
    "equal",
    "positive_le",
    "timer",
    "buffer",
    "validate",
    "rename",
];

/// Collects errors; each keeps its own (possibly multi-token) span.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn push_darling(&mut self, e: darling::Error) {
        self.push(e.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

/// An error covering all of `tokens` (first to last token, even on stable).
pub fn error(tokens: impl ToTokens, msg: impl Display) -> syn::Error {
    syn::Error::new_spanned(tokens, msg)
}

/// A span for generated code that is about `node`: errors in it are shown at
/// `node` (the user's type or path), while names in it resolve like the rest of the
/// generated code (so `self` and locals still work when the struct was written by a
/// `macro_rules!` macro).
pub fn user_span(node: &impl syn::spanned::Spanned) -> Span {
    Span::call_site().located_at(node.span())
}

/// An error at one span.
pub fn error_at(span: Span, msg: impl Display) -> syn::Error {
    syn::Error::new(span, msg)
}

/// The tokens of each key of one item's `#[vmstate(...)]` attributes, in order.
#[derive(Default, Clone)]
pub struct Keys(Vec<(String, TokenStream)>, bool);

impl Keys {
    /// Whether an unknown key was removed: checks that depend on what that key
    /// might have said (a typo of `version`, of `skip`...) are not run, so one typo
    /// gives one error.
    pub fn had_unknown(&self) -> bool {
        self.1
    }

    /// The tokens of `key ...` (e.g. `since = 3`, `varray(len = n)`, `skip`).
    pub fn get(&self, key: &str) -> Option<&TokenStream> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

/// Key tokens for the container and for each field (by position).
#[derive(Default)]
pub struct AttrKeys {
    pub container: Keys,
    pub fields: Vec<Keys>,
}

/// The pre-pass result: the input with unknown/duplicate keys removed, the key
/// tokens, and the errors found. `shape_ok` is false when the input's shape is
/// unsupported (darling must not run: its own shape errors point at the derive).
pub struct Prepared {
    pub input: syn::DeriveInput,
    pub keys: AttrKeys,
    pub errors: Errors,
    pub shape_ok: bool,
}

pub fn prepare(input: &syn::DeriveInput) -> Prepared {
    let mut input = input.clone();
    let mut errors = Errors::default();
    let mut keys = AttrKeys::default();
    let shape_ok = check_shape(&input, &mut errors);

    let is_enum = matches!(input.data, syn::Data::Enum(_));
    // Enum container keys are parsed like a struct's and rejected with a specific
    // message later; only keys that exist nowhere are reported here.
    keys.container = scan_attrs(
        &mut input.attrs,
        CONTAINER_KEYS,
        FIELD_KEYS,
        &Owner::Container { is_enum },
        &mut errors,
    );
    match &mut input.data {
        syn::Data::Struct(s) => {
            for (i, f) in s.fields.iter_mut().enumerate() {
                let owner = Owner::Field(
                    f.ident
                        .as_ref()
                        .map_or_else(|| i.to_string(), |id| id.to_string()),
                );
                keys.fields.push(scan_attrs(
                    &mut f.attrs,
                    FIELD_KEYS,
                    CONTAINER_KEYS,
                    &owner,
                    &mut errors,
                ));
            }
        }
        syn::Data::Enum(e) => {
            for v in &mut e.variants {
                let owner = Owner::Variant(v.ident.to_string());
                scan_attrs(&mut v.attrs, &[], &[], &owner, &mut errors);
            }
        }
        syn::Data::Union(_) => {}
    }
    Prepared {
        input,
        keys,
        errors,
        shape_ok,
    }
}

/// Unions, tuple and unit structs and enum variants with data cannot derive VmState.
fn check_shape(input: &syn::DeriveInput, errors: &mut Errors) -> bool {
    let ident = &input.ident;
    match &input.data {
        syn::Data::Union(u) => {
            let u_tok = u.union_token;
            errors.push(error(
                quote::quote!(#u_tok #ident),
                "`#[derive(VmState)]` does not support unions: the loader could not tell which \
                 member is on the wire; migrate the raw bytes instead (e.g. a struct with a \
                 `[u8; N]` field) and convert them in `pre_save`/`post_load`",
            ));
            false
        }
        syn::Data::Struct(s) => match &s.fields {
            syn::Fields::Named(_) => true,
            syn::Fields::Unnamed(fields) => {
                errors.push(error(
                    fields,
                    format!(
                        "`#[derive(VmState)]` needs named fields: each field's name is its name in \
                         the VMState description and in error messages; write \
                         `struct {ident} {{ name: Type, .. }}`"
                    ),
                ));
                false
            }
            syn::Fields::Unit => {
                let s_tok = s.struct_token;
                errors.push(error(
                    quote::quote!(#s_tok #ident),
                    format!(
                        "`#[derive(VmState)]` needs a struct with named fields; a device without \
                         migrated fields is written `struct {ident} {{}}`"
                    ),
                ));
                false
            }
        },
        syn::Data::Enum(e) => {
            let mut ok = true;
            for v in &e.variants {
                if !matches!(v.fields, syn::Fields::Unit) {
                    ok = false;
                    errors.push(error(
                        &v.fields,
                        format!(
                            "variant `{}` carries data: an enum deriving VmState travels as its \
                             #[repr] integer discriminant, so all its variants must be unit \
                             variants (keep data in a struct deriving VmState)",
                            v.ident
                        ),
                    ));
                }
            }
            ok
        }
    }
}

enum Owner {
    Container { is_enum: bool },
    Field(String),
    Variant(String),
}

/// Reads the `#[vmstate(...)]` attributes of one item: records each key's tokens,
/// reports unknown and duplicated keys and removes them from the attribute.
fn scan_attrs(
    attrs: &mut [syn::Attribute],
    known: &[&str],
    elsewhere: &[&str],
    owner: &Owner,
    errors: &mut Errors,
) -> Keys {
    let mut keys = Keys::default();
    for attr in attrs.iter_mut().filter(|a| a.path().is_ident("vmstate")) {
        let syn::Meta::List(list) = &mut attr.meta else {
            continue; // darling reports `#[vmstate]` / `#[vmstate = ..]`
        };
        if list.delimiter != syn::MacroDelimiter::Paren(Default::default()) {
            continue;
        }
        let mut kept = TokenStream::new();
        for item in split_items(list.tokens.clone()) {
            let Some(TokenTree::Ident(key)) = item.clone().into_iter().next() else {
                // Not `key ...`: darling reports it.
                push_item(&mut kept, item);
                continue;
            };
            let name = key.to_string();
            if let Owner::Variant(variant) = owner {
                errors.push(error(
                    &item,
                    format!(
                        "`{name}` on variant `{variant}`: enum variants take no #[vmstate] keys \
                         (an enum travels as its #[repr] discriminant)"
                    ),
                ));
                continue;
            }
            if !known.contains(&name.as_str()) {
                errors.push(error(
                    &key,
                    unknown_key_message(&name, known, elsewhere, owner),
                ));
                keys.1 = true;
                continue;
            }
            if keys.get(&name).is_some() {
                let on = match owner {
                    Owner::Field(f) => format!("on field `{f}`"),
                    _ => "on this type".to_string(),
                };
                errors.push(error(
                    &item,
                    format!("`{name}` is given twice {on}; keep one"),
                ));
                continue;
            }
            match check_value(&name, &item) {
                Ok(()) => push_item(&mut kept, item.clone()),
                Err((e, replacement)) => {
                    errors.push(e);
                    // What follows from this key is unknown: like an unknown key.
                    keys.1 = true;
                    if let Some(r) = replacement {
                        push_item(&mut kept, r);
                    }
                }
            }
            keys.0.push((name, item));
        }
        list.tokens = kept;
    }
    keys
}

/// The form of a key's value.
enum ValueKind {
    /// `skip`
    Flag,
    /// `since = 2`; the largest allowed value.
    Int(u64),
    /// `name = "serial"`
    Str,
    /// `test = has_x`, `pre_save = path::to::f`
    Path,
    /// `priority = Iommu`
    Ident,
    /// `varray(..)`, `subsection` / `subsection(..)`: parsed by `attr.rs`.
    Nested,
}

fn value_kind(key: &str) -> ValueKind {
    match key {
        "with_tmp" | "skip" | "list" | "equal" | "positive_le" | "timer" | "buffer" => {
            ValueKind::Flag
        }
        "version" | "minimum_version" | "since" => ValueKind::Int(u32::MAX.into()),
        // `usize` in the attribute receiver (darling accepted any usize before).
        "unused" | "max" => ValueKind::Int(usize::MAX as u64),
        "name" | "rename" => ValueKind::Str,
        "test" | "validate" | "pre_save" | "post_save" | "pre_load" | "post_load" => {
            ValueKind::Path
        }
        "priority" => ValueKind::Ident,
        _ => ValueKind::Nested,
    }
}

/// Checks that a key's value has the right form. On error, also returns what to
/// hand darling instead (so the remaining checks run without follow-up errors).
#[allow(clippy::result_large_err)]
fn check_value(key: &str, item: &TokenStream) -> Result<(), (syn::Error, Option<TokenStream>)> {
    let mut tokens = item.clone().into_iter();
    let key_tt = tokens.next();
    let rest: Vec<TokenTree> = tokens.collect();
    let key_ident = match &key_tt {
        Some(TokenTree::Ident(i)) => i.clone(),
        _ => return Ok(()),
    };
    // `key = value` → Some(value tokens)
    let value: Option<TokenStream> = match rest.first() {
        Some(TokenTree::Punct(p)) if p.as_char() == '=' => {
            Some(rest[1..].iter().cloned().collect())
        }
        _ => None,
    };
    let single_lit = || -> Option<syn::Lit> {
        let v = value.as_ref()?;
        syn::parse2::<syn::Lit>(v.clone()).ok()
    };
    let example = |v: &str| format!("`{key} = {v}`");
    match value_kind(key) {
        ValueKind::Flag => {
            if rest.is_empty() {
                return Ok(());
            }
            Err((
                error(item, format!("`{key}` takes no value: write just `{key}`")),
                Some(key_ident.into_token_stream()),
            ))
        }
        ValueKind::Nested => Ok(()),
        ValueKind::Int(max) => {
            let parsed = match single_lit() {
                Some(syn::Lit::Int(i)) => i.base10_parse::<u64>().ok(),
                Some(syn::Lit::Str(s)) => s.value().trim().parse::<u64>().ok(),
                _ => None,
            };
            match parsed {
                Some(n) if n <= max => Ok(()),
                _ => {
                    let what = match key {
                        "version" | "minimum_version" => example("2"),
                        "since" => example("3"),
                        "unused" => example("4"),
                        _ => example("256"),
                    };
                    let at = value.clone().filter(|v| !v.is_empty());
                    let e = match &at {
                        Some(v) => error(
                            v,
                            format!("`{key}` takes a non-negative integer, e.g. {what}"),
                        ),
                        None => error(item, format!("`{key}` needs a value, e.g. {what}")),
                    };
                    Err((e, Some(quote::quote!(#key_ident = 0))))
                }
            }
        }
        ValueKind::Str => match single_lit() {
            Some(syn::Lit::Str(_)) => Ok(()),
            _ => Err((
                error(
                    value
                        .clone()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| item.clone()),
                    format!("`{key}` takes a string, e.g. {}", example("\"serial\"")),
                ),
                None,
            )),
        },
        ValueKind::Path | ValueKind::Ident => {
            let ok = match &value {
                Some(v) => match syn::parse2::<syn::Expr>(v.clone()) {
                    Ok(syn::Expr::Path(p)) => {
                        p.qself.is_none()
                            && (matches!(value_kind(key), ValueKind::Path)
                                || p.path.get_ident().is_some())
                    }
                    Ok(syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    })) => s.parse::<syn::Path>().is_ok(),
                    _ => false,
                },
                None => false,
            };
            if ok {
                return Ok(());
            }
            let msg = if matches!(value_kind(key), ValueKind::Ident) {
                format!(
                    "`{key}` takes a `MigrationPriority` variant, e.g. {}",
                    example("Iommu")
                )
            } else {
                let f = match key {
                    "test" => "fn(&Self, u32) -> bool",
                    "validate" => "fn(&Self, u32) -> bool",
                    "post_load" => "fn(&mut Self, u32) -> Result<(), E>",
                    "pre_load" => "fn(&mut Self) -> Result<(), E>",
                    _ => "fn(&Self) -> Result<(), E>",
                };
                format!(
                    "`{key}` takes the path of a `{f}`, e.g. {}",
                    example("my_fn")
                )
            };
            Err((
                error(
                    value
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| item.clone()),
                    msg,
                ),
                None,
            ))
        }
    }
}

fn unknown_key_message(name: &str, known: &[&str], elsewhere: &[&str], owner: &Owner) -> String {
    let (place, other_place) = match owner {
        Owner::Container { is_enum: true } => ("on an enum", "on a struct field"),
        Owner::Container { is_enum: false } => ("on a struct", "on a field"),
        Owner::Field(_) => ("on a field", "to the struct"),
        Owner::Variant(_) => ("on a variant", ""),
    };
    let what = match owner {
        Owner::Field(f) => format!("unknown key `{name}` in #[vmstate(...)] on field `{f}`"),
        _ => format!("unknown key `{name}` in #[vmstate(...)] {place}"),
    };
    if elsewhere.contains(&name) {
        return match owner {
            Owner::Field(f) => format!(
                "`{name}` is a key of the struct's own #[vmstate(...)], not of a field: \
                 move it from field `{f}` {other_place}"
            ),
            _ => format!(
                "`{name}` is a field key and has no meaning {place}: put it {other_place}'s \
                 #[vmstate(...)]"
            ),
        };
    }
    match closest(name, known.iter().copied()) {
        Some(close) => format!("{what}; did you mean `{close}`?"),
        None => format!("{what}; expected one of: {}", known.join(", ")),
    }
}

/// Splits attribute tokens at top-level commas.
fn split_items(tokens: TokenStream) -> Vec<TokenStream> {
    let mut items = Vec::new();
    let mut cur = TokenStream::new();
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                items.push(std::mem::take(&mut cur));
            }
            _ => cur.extend([tt]),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items.retain(|i| !i.is_empty());
    items
}

fn push_item(out: &mut TokenStream, item: TokenStream) {
    if !out.is_empty() {
        out.extend(quote::quote!(,));
    }
    out.extend(item);
}

/// The candidate closest to `name` when it looks like a typo of it.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| {
            *d > 0
                && (*d <= 2.min(c.len().max(name.len()) / 2)
                    || (c.len().min(name.len()) >= 3
                        && (c.starts_with(name) || name.starts_with(c))))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A type as a user would write it: `&'a [u8; 16]`, `Vec<u32>`, `(i32, i32)`.
pub fn type_string(ty: &syn::Type) -> String {
    let mut out = String::new();
    write_tokens(&mut out, ty.to_token_stream());
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    // Whether the next word needs a space before it (after `mut`, `dyn`, a lifetime...).
    let mut space_next = false;
    let mut in_lifetime = false;
    for tt in tokens {
        let needs_space = std::mem::take(&mut space_next);
        match tt {
            TokenTree::Ident(id) => {
                let s = id.to_string();
                if needs_space || out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    out.push(' ');
                }
                out.push_str(&s);
                space_next =
                    in_lifetime || matches!(s.as_str(), "mut" | "dyn" | "impl" | "const" | "as");
                in_lifetime = false;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                match c {
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    '+' | '=' => {
                        out.push(' ');
                        out.push(c);
                        out.push(' ');
                    }
                    '\'' => {
                        if needs_space {
                            out.push(' ');
                        }
                        out.push(c);
                        in_lifetime = true;
                    }
                    _ => {
                        if needs_space && c != '>' {
                            out.push(' ');
                        }
                        out.push(c);
                    }
                }
            }
            TokenTree::Literal(l) => {
                if needs_space {
                    out.push(' ');
                }
                out.push_str(&l.to_string());
            }
            TokenTree::Group(g) => {
                if needs_space {
                    out.push(' ');
                }
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(out, g.stream());
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(close);
            }
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> String {
        type_string(&syn::parse_str(s).unwrap())
    }

    #[test]
    fn prints_types_like_rustfmt() {
        assert_eq!(ty("& 'a [u8 ; 16]"), "&'a [u8; 16]");
        assert_eq!(ty("Vec < u32 >"), "Vec<u32>");
        assert_eq!(ty("(i32 , i32)"), "(i32, i32)");
        assert_eq!(ty("Option<Box<T>>"), "Option<Box<T>>");
        assert_eq!(ty("&mut [u8]"), "&mut [u8]");
        assert_eq!(ty("std::vec::Vec<u8>"), "std::vec::Vec<u8>");
        assert_eq!(ty("Box<dyn Fn(u8) + Send>"), "Box<dyn Fn(u8) + Send>");
        assert_eq!(ty("*const u8"), "*const u8");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("verison", CONTAINER_KEYS.iter().copied()),
            Some("version")
        );
        assert_eq!(closest("sinc", FIELD_KEYS.iter().copied()), Some("since"));
        assert_eq!(closest("endian", FIELD_KEYS.iter().copied()), None);
        assert_eq!(
            closest("queu_len", ["queue_len", "status"]),
            Some("queue_len")
        );
        assert_eq!(closest("mix", ["max"]), Some("max"));
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(closest("length", ["len"]), Some("len"));
        assert_eq!(closest("need", ["needed"]), Some("needed"));
    }

    #[test]
    fn splits_items() {
        let items = split_items(quote::quote!(varray(len = n), max = 4, skip,));
        assert_eq!(items.len(), 3);
    }
}
