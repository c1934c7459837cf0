//! The one pass over an item's `#[vmstate(...)]` attributes: each `key ...` is
//! looked up in the symbol table, reported when unknown, misplaced or given twice,
//! and its value parsed by the form the table gives it. What comes out is a list of
//! known keys with parsed values and the tokens they were written as.

use proc_macro2::{TokenStream, TokenTree};

use super::value::{self, Value};
use crate::ctxt::Ctxt;
use crate::suggest::closest;
use crate::symbol::{self, Key, Place, Sym};

/// Whose attributes are read.
pub enum Owner {
    Container { is_enum: bool },
    Field(String),
    Variant(String),
}

impl Owner {
    /// Whether `key` may be written here. An enum accepts the struct's keys too:
    /// they are rejected by the enum checks with a message of their own.
    fn accepts(&self, key: &Key) -> bool {
        match self {
            Owner::Container { .. } => key.is_container_key(),
            Owner::Field(_) => key.allowed_on(Place::Field),
            Owner::Variant(_) => false,
        }
    }
}

/// One known key, as written, with its parsed value.
pub struct Item {
    pub sym: Sym,
    pub value: Value,
    /// The whole `key ...` (`since = 3`), where errors about the key point.
    pub tokens: TokenStream,
}

/// Which keys one item's attributes gave, and where.
#[derive(Default)]
pub struct Keys {
    /// The keys read (with a value, or a stand-in for an unreadable one), in the
    /// order written, each at most once.
    given: Vec<(Sym, TokenStream)>,
    /// Every known key met, even one whose value was unreadable (so a second one
    /// is still reported as given twice).
    seen: Vec<Sym>,
    /// Whether a key was unknown or its value unreadable: checks that depend on
    /// what that key might have said (a typo of `version`, of `skip`...) are not
    /// run, so one typo gives one error.
    pub uncertain: bool,
}

impl Keys {
    /// The tokens of `key ...` when the key was given.
    pub fn tokens(&self, sym: Sym) -> Option<&TokenStream> {
        self.given.iter().find(|(s, _)| *s == sym).map(|(_, t)| t)
    }

    /// Whether the key was given.
    pub fn has(&self, sym: Sym) -> bool {
        self.tokens(sym).is_some()
    }

    /// The given keys with `role`, in symbol-table order, with their tokens.
    pub fn with_role(&self, role: symbol::Role) -> Vec<(Sym, &TokenStream)> {
        symbol::KEYS
            .iter()
            .filter(|k| k.role == role)
            .filter_map(|k| self.tokens(k.sym).map(|t| (k.sym, t)))
            .collect()
    }
}

/// Reads the `#[vmstate(...)]` attributes of one item, reporting every mistake:
/// which keys it gives, and each known key's value.
pub fn read(cx: &Ctxt, attrs: &[syn::Attribute], owner: &Owner) -> (Keys, Vec<Item>) {
    let mut keys = Keys::default();
    let mut items = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("vmstate")) {
        let syn::Meta::List(list) = &attr.meta else {
            cx.error_spanned_by(attr, "write `#[vmstate(key = value, ..)]`");
            continue;
        };
        for item in split_items(list.tokens.clone()) {
            if let Some(read) = read_item(cx, item, owner, &mut keys) {
                keys.given.push((read.sym, read.tokens.clone()));
                items.push(read);
            }
        }
    }
    (keys, items)
}

fn read_item(cx: &Ctxt, item: TokenStream, owner: &Owner, keys: &mut Keys) -> Option<Item> {
    let Some(TokenTree::Ident(key)) = item.clone().into_iter().next() else {
        cx.error_spanned_by(
            &item,
            "expected a key in #[vmstate(...)]: `key`, `key = value` or `key(..)`",
        );
        return None;
    };
    let name = key.to_string();
    if let Owner::Variant(variant) = owner {
        cx.error_spanned_by(
            &item,
            format!(
                "`{name}` on variant `{variant}`: enum variants take no #[vmstate] keys \
                 (an enum travels as its #[repr] discriminant)"
            ),
        );
        return None;
    }
    let Some(known) = symbol::lookup(&name).filter(|k| owner.accepts(k)) else {
        cx.error_spanned_by(&key, unknown_key_message(&name, owner));
        keys.uncertain = true;
        return None;
    };
    if keys.seen.contains(&known.sym) {
        let on = match owner {
            Owner::Field(f) => format!("on field `{f}`"),
            _ => "on this type".to_string(),
        };
        cx.error_spanned_by(&item, format!("`{name}` is given twice {on}; keep one"));
        return None;
    }
    keys.seen.push(known.sym);
    let value = value::parse(cx, known, &item).or_else(|stand_in| {
        // What follows from this key is unknown: like an unknown key.
        keys.uncertain = true;
        stand_in.ok_or(())
    });
    Some(Item {
        sym: known.sym,
        value: value.ok()?,
        tokens: item,
    })
}

fn unknown_key_message(name: &str, owner: &Owner) -> String {
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
    if symbol::lookup(name).is_some() {
        // Known, but not here.
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
    let known = symbol::names(|k| owner.accepts(k));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_items() {
        let items = split_items(quote::quote!(varray(len = n), max = 4, skip,));
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn misplaced_and_unknown_keys() {
        let field = Owner::Field("x".into());
        assert!(unknown_key_message("version", &field).contains("not of a field"));
        assert!(unknown_key_message("crate", &field).contains("not of a field"));
        let on_struct = Owner::Container { is_enum: false };
        assert!(unknown_key_message("since", &on_struct).contains("is a field key"));
        assert!(unknown_key_message("verison", &on_struct).ends_with("did you mean `version`?"));
    }
}
