//! An enum deriving VmState: a field type travelling as its integer `#[repr]`.

use crate::ast::ReprEnum;
use crate::attr::Input;
use crate::ctxt::Ctxt;
use crate::symbol::{Place, KEYS};

/// Checks an enum: its IR, or `None` when it cannot have an impl.
pub fn check<'a>(
    cx: &Ctxt,
    input: &'a Input<'a>,
    repr: Option<&syn::Ident>,
    variants: &[&'a syn::Ident],
) -> Option<ReprEnum<'a>> {
    let keys = &input.container.keys;
    for key in KEYS.iter().filter(|k| !k.allowed_on(Place::Enum)) {
        if let Some(tokens) = keys.tokens(key.sym) {
            cx.error_spanned_by(
                tokens,
                format!(
                    "`{}` has no meaning on an enum: an enum deriving VmState is a field type, \
                     encoded as its #[repr] integer (put `{}` on the struct that contains it)",
                    key.name, key.name
                ),
            );
        }
    }
    let Some(repr) = repr else {
        cx.error_spanned_by(
            input.ident,
            format!(
                "enum `{}` needs an integer representation to derive VmState: add #[repr(u8)] \
                 (or u16, u32, u64, i8, i16, i32, i64); its discriminant is what goes on the wire",
                input.ident
            ),
        );
        return None;
    };
    if variants.is_empty() {
        // rustc itself rejects `#[repr(u8)]` on an enum without variants (E0084);
        // nothing to add, but no impl either (it could not match on `self`).
        return None;
    }
    Some(ReprEnum {
        ident: input.ident,
        generics: input.generics,
        runtime: super::runtime(input),
        repr: repr.clone(),
        variants: variants.to_vec(),
    })
}
