//! Fields whose count travels in an earlier field: `varray`, `vbuffer`, `bitmap`.
//! The count field must exist, come earlier, be on the wire and have a count type;
//! a `Vec` needs `max` to bound the count before anything is allocated.

use super::type_error;
use crate::ast::FieldKind;
use crate::attr::FieldAttrs;
use crate::ctxt::Ctxt;
use crate::suggest::closest;
use crate::symbol::Sym;
use crate::types::{self, type_string};

/// `varray(len = ..)` or (`key` = `vbuffer`) `vbuffer(len = ..)`.
pub fn var_kind<'a>(
    cx: &Ctxt,
    fields: &'a [FieldAttrs<'a>],
    index: usize,
    ident: &syn::Ident,
    key: Sym,
) -> Option<FieldKind<'a>> {
    let f = &fields[index];
    let ty = f.ty;
    let buffer = key == Sym::Vbuffer;
    let len_attr = f.len_attr(key).expect("travel key present");
    let len = len_attr.len.as_ref()?; // a mistake in the parentheses, reported
    check_count_field(cx, fields, index, ident, len, key);
    let key = key.name();
    let elem_error = || {
        type_error(
            cx,
            ident,
            ty,
            "`vbuffer` is a byte buffer and needs `Vec<u8>` or `[u8; N]`; for other \
             element types use `varray(len = ..)`",
        )
    };
    let max = f.max.as_ref().map(|m| **m);
    Some(if let Some(elem) = types::vec_elem(ty) {
        if buffer && !types::is_u8(elem) {
            elem_error();
        }
        let max = max.unwrap_or_else(|| {
            cx.error_spanned_by(
                &len_attr.tokens,
                format!(
                    "`{key}` on the Vec field `{ident}` needs `max = N`: the count \
                     comes from the stream and must be bounded before anything is \
                     allocated; add e.g. `{key}(len = {len}), max = 256`"
                ),
            );
            0
        });
        FieldKind::VarVec {
            elem,
            len,
            max,
            buffer,
        }
    } else if let Some((elem, n)) = types::array_parts(ty) {
        if buffer && !types::is_u8(elem) {
            elem_error();
        }
        FieldKind::VarArray {
            elem,
            n,
            len,
            max,
            buffer,
        }
    } else {
        type_error(
            cx,
            ident,
            ty,
            &format!(
                "`{key}` needs a `Vec<T>` or an array `[T; N]` to hold the elements \
                 its count field `{len}` announces"
            ),
        );
        FieldKind::Skip
    })
}

/// `bitmap(len = ..)`: a `Vec<u64>` of `len` bits.
pub fn bitmap_kind<'a>(
    cx: &Ctxt,
    fields: &'a [FieldAttrs<'a>],
    index: usize,
    ident: &syn::Ident,
) -> Option<FieldKind<'a>> {
    let f = &fields[index];
    let len_attr = f.len_attr(Sym::Bitmap).expect("travel key present");
    let len = len_attr.len.as_ref()?; // a mistake in the parentheses, reported
    check_count_field(cx, fields, index, ident, len, Sym::Bitmap);
    if !types::vec_elem(f.ty).is_some_and(types::is_u64) {
        type_error(
            cx,
            ident,
            f.ty,
            "`bitmap` needs a `Vec<u64>` (64 bits per word, as QEMU's bitmaps)",
        );
    }
    let max = f.max.as_ref().map(|m| **m).unwrap_or_else(|| {
        cx.error_spanned_by(
            &len_attr.tokens,
            format!(
                "`bitmap` on field `{ident}` needs `max = N`, the largest number of \
                 bits the stream may announce; add e.g. `bitmap(len = {len}), max = 4096`"
            ),
        );
        0
    });
    Some(FieldKind::Bitmap { len, max })
}

/// The count field of a varray/vbuffer/bitmap must exist, come earlier, be on the
/// wire, and have a count type.
fn check_count_field(
    cx: &Ctxt,
    fields: &[FieldAttrs],
    index: usize,
    ident: &syn::Ident,
    len: &syn::Ident,
    key: Sym,
) {
    let what = format!("`{}(len = {len})` on field `{ident}`", key.name());
    let pos = fields.iter().position(|f| f.ident == Some(len));
    match pos {
        None => {
            let names: Vec<String> = fields[..index]
                .iter()
                .filter_map(|f| f.ident)
                .map(|i| i.to_string())
                .collect();
            let hint = closest(&len.to_string(), names.iter().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    " (the count must be an earlier field of this struct)".to_string()
                });
            cx.error_at(
                len.span(),
                format!("{what}: there is no field named `{len}`{hint}"),
            );
        }
        Some(p) if p >= index => cx.error_at(
            len.span(),
            format!(
                "{what}: the count field `{len}` must come before `{ident}`: the loader reads \
                 the count first; move `{len}` above `{ident}`"
            ),
        ),
        Some(p) => {
            let f = &fields[p];
            let skipped = f.keys.has(Sym::Skip);
            if skipped || f.subsection.is_some() {
                cx.error_at(
                    len.span(),
                    format!(
                        "{what}: the count field `{len}` is not on the wire (it is {}), so the \
                         loader could not know the count",
                        if skipped { "`skip`" } else { "a subsection" }
                    ),
                );
            } else if !types::is_count_type(f.ty) {
                cx.error_at(
                    len.span(),
                    format!(
                        "{what}: the count field `{len}` has type `{}`; a count must be u8, u16, \
                         u32 or i32 (QEMU's VARRAY_UINT8/UINT16/UINT32/INT32)",
                        type_string(f.ty)
                    ),
                );
            }
        }
    }
}
