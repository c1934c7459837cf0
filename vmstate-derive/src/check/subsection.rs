//! Subsection fields. What a subsection's type must be (its own description, a
//! name under the parent's) is checked by rustc and by static checks in the
//! generated code; what is left here is which field keys make no sense on one.

use crate::ast::Subsection;
use crate::attr::{Attr, FieldAttrs, SubsectionAttr};
use crate::symbol::Sym;

/// The IR of subsection field `ident`.
pub fn build<'a>(
    ident: &'a syn::Ident,
    f: &'a FieldAttrs<'a>,
    sub: &'a Attr<SubsectionAttr>,
) -> Subsection<'a> {
    Subsection {
        ident,
        ty: f.ty,
        needed: sub.needed.as_ref(),
    }
}

/// Why modifier `m` cannot go on a subsection field.
pub fn why_no_modifier(m: Sym) -> &'static str {
    match m {
        Sym::Since | Sym::Test => {
            "a subsection is sent when its `needed` function says so; \
             decide there (`subsection(needed = path)`)"
        }
        Sym::Max => "a subsection has no count to bound",
        _ => "put the check in the subsection type's own hooks",
    }
}
