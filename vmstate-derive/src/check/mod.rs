//! The checks: turn the read attributes into the checked [IR](crate::ast),
//! reporting every problem found (not just the first), each at the attribute or
//! type that causes it (`since = 3` as a whole, the field's type, the `len` field
//! name inside `varray(..)`), never at the `#[derive]`. One module per concern.

mod container;
mod field;
mod kind;
mod len_field;
mod repr_enum;
mod subsection;

use crate::ast;
use crate::attr::{self, Data};
use crate::ctxt::Ctxt;
use crate::types::type_string;

/// Checks a read input: the IR when neither reading nor checking reported an error.
pub fn check<'a>(cx: &Ctxt, input: &'a attr::Input<'a>) -> Option<ast::Input<'a>> {
    let checked = match &input.data {
        Data::Enum { repr, variants } => {
            repr_enum::check(cx, input, repr.as_ref(), variants).map(ast::Input::Enum)
        }
        Data::Struct(fields) => container::check(cx, input, fields).map(ast::Input::Struct),
    };
    checked.filter(|_| !cx.has_errors())
}

/// The runtime path: `crate = "..."`, else `::vmstate_runtime`.
fn runtime(input: &attr::Input) -> syn::Path {
    input
        .container
        .runtime
        .as_ref()
        .map_or_else(|| syn::parse_quote!(::vmstate_runtime), |p| p.value.clone())
}

/// A field whose type does not fit its attribute.
fn type_error(cx: &Ctxt, ident: &syn::Ident, ty: &syn::Type, reason: &str) {
    cx.error_spanned_by(
        ty,
        format!("field `{ident}` has type `{}`: {reason}", type_string(ty)),
    );
}
