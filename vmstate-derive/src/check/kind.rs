//! How a body field travels, from its travel key (`list`, `timer`, ... or none),
//! and whether its type fits that key.

use super::{len_field, type_error};
use crate::ast::FieldKind;
use crate::attr::FieldAttrs;
use crate::ctxt::Ctxt;
use crate::symbol::Sym;
use crate::types::{self, type_string};

const SUPPORTED: &str = "supported field types: bool, u8, u16, u32, u64, i8, i16, i32, i64, \
[T; N], Vec<T> with `varray`/`vbuffer`/`list`, Box<T>, Option<Box<T>>, \
nested types deriving VmState, and enums deriving VmState with an integer #[repr]";

/// The kind of field `index`, whose travel key is `kind_key`; `None` when it cannot
/// be known (a count-driven field without its count field, already reported).
pub fn check<'a>(
    cx: &Ctxt,
    fields: &'a [FieldAttrs<'a>],
    index: usize,
    ident: &syn::Ident,
    kind_key: Option<Sym>,
) -> Option<FieldKind<'a>> {
    let f = &fields[index];
    let ty = f.ty;
    let kind = match kind_key {
        Some(Sym::Skip) => FieldKind::Skip,
        Some(Sym::WithTmp) => match types::with_tmp_inner(ty) {
            Some(inner) => FieldKind::WithTmp(inner),
            None => {
                type_error(
                    cx,
                    ident,
                    ty,
                    &format!(
                        "`with_tmp` needs the marker type `WithTmp<T>` (T: VmStateTmp<Self>); \
                         declare the field as `WithTmp<{}>`",
                        type_string(ty)
                    ),
                );
                FieldKind::Skip
            }
        },
        Some(Sym::Unused) => FieldKind::Unused(f.unused.as_ref().map_or(0, |u| **u)),
        Some(key @ (Sym::Varray | Sym::Vbuffer)) => {
            len_field::var_kind(cx, fields, index, ident, key)?
        }
        Some(Sym::Bitmap) => len_field::bitmap_kind(cx, fields, index, ident)?,
        Some(Sym::List) => match types::vec_elem(ty) {
            Some(elem) => {
                let max = f.max.as_ref().map(|m| **m).unwrap_or_else(|| {
                    cx.error_spanned_by(
                        f.keys.tokens(Sym::List),
                        format!(
                            "`list` on field `{ident}` needs `max = N`, the largest number of \
                             elements the stream may hold; add e.g. `list, max = 64`"
                        ),
                    );
                    0
                });
                FieldKind::List { elem, max }
            }
            None => {
                type_error(
                    cx,
                    ident,
                    ty,
                    "`list` needs a `Vec<T>` where T derives VmState",
                );
                FieldKind::Skip
            }
        },
        Some(key @ (Sym::Equal | Sym::PositiveLe | Sym::Timer | Sym::Buffer)) => {
            let (kind, fits, why) = fixed_type_kind(key);
            if !fits(ty) {
                type_error(cx, ident, ty, why);
            }
            kind
        }
        // An unknown key was removed from this field (`skp`? `varay`?): what the
        // plain type supports is beside the point.
        _ if f.keys.uncertain => FieldKind::Skip,
        _ => plain(cx, f, ident),
    };
    Some(kind)
}

/// The travel keys that only ask for one type: the kind, the type test, and the
/// error's reason.
fn fixed_type_kind(key: Sym) -> (FieldKind<'static>, fn(&syn::Type) -> bool, &'static str) {
    match key {
        Sym::Equal => (
            FieldKind::Equal,
            types::is_integer,
            "`equal` compares integers and needs one of u8, u16, u32, u64, i8, i16, i32, i64",
        ),
        Sym::PositiveLe => (
            FieldKind::PositiveLe,
            types::is_i32,
            "`positive_le` needs an `i32` field (QEMU's VMSTATE_INT32_POSITIVE_LE checks \
             0 <= incoming <= current)",
        ),
        Sym::Timer => (
            FieldKind::Timer,
            |ty| types::option_inner(ty).is_some_and(types::is_u64),
            "`timer` needs an `Option<u64>` field: the expiry in ns, `None` when the timer is \
             not armed",
        ),
        Sym::Buffer => (
            FieldKind::Buffer,
            |ty| types::array_parts(ty).is_some_and(|(e, _)| types::is_u8(e)),
            "`buffer` describes a byte array and needs a `[u8; N]` field",
        ),
        other => unreachable!("`{}` has no fixed type", other.name()),
    }
}

/// A field without a travel key: its type's own `VmStateField` encoding.
fn plain<'a>(cx: &Ctxt, f: &FieldAttrs<'a>, ident: &syn::Ident) -> FieldKind<'a> {
    let ty = f.ty;
    if let Some(reason) = types::unsupported_reason(ty) {
        unsupported_type_error(cx, ident, ty, reason);
    } else if types::vec_elem(ty).is_some() {
        unsupported_type_error(
            cx,
            ident,
            ty,
            "a `Vec` needs to say how its length travels: add \
             `varray(len = count_field), max = N`, `vbuffer(len = count_field), max = N` \
             or `list, max = N`",
        );
    } else if types::option_inner(ty)
        .is_some_and(|inner| types::simple_name(inner).as_deref() != Some("Box"))
    {
        unsupported_type_error(
            cx,
            ident,
            ty,
            "`Option<T>` is only supported as `Option<Box<T>>` (an element of an array \
             of pointers) or as `Option<u64>` with `timer`",
        );
    } else if types::is_unit(ty) && f.validate.is_none() {
        type_error(
            cx,
            ident,
            ty,
            "`()` carries nothing; use it with `unused = N` or `validate = path`",
        );
    }
    if types::is_unit(ty) {
        FieldKind::Unused(0)
    } else {
        FieldKind::Plain
    }
}

/// A field whose type can never be migrated: also lists what can.
fn unsupported_type_error(cx: &Ctxt, ident: &syn::Ident, ty: &syn::Type, reason: &str) {
    cx.error_spanned_by(
        ty,
        format!(
            "unsupported type `{}` for field `{ident}`: {reason}\n\
             note: {SUPPORTED}",
            type_string(ty)
        ),
    );
}
