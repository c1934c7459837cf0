//! `#[vmstate(...)]` on a field, as read by the attribute pass.

use super::keys::{self, Keys, Owner};
use super::nested::{LenAttr, SubsectionAttr};
use super::value::Value;
use super::Attr;
use crate::ctxt::Ctxt;
use crate::symbol::Sym;

/// A field and its keys. Flags (`skip`, `list`, ...) are only in `keys`.
pub struct FieldAttrs<'a> {
    /// `None` in a tuple struct (rejected by the shape check).
    pub ident: Option<&'a syn::Ident>,
    pub ty: &'a syn::Type,
    /// On the wire only for versions >= N (QEMU `_V`).
    pub since: Option<Attr<u32>>,
    /// `fn(&Self, version_id: u32) -> bool` decides presence (QEMU `_TEST`).
    pub test: Option<Attr<syn::Path>>,
    /// This field is a subsection.
    pub subsection: Option<Attr<SubsectionAttr>>,
    /// N bytes of padding (VMSTATE_UNUSED).
    pub unused: Option<Attr<usize>>,
    /// Variable array whose count is an earlier field.
    pub varray: Option<Attr<LenAttr>>,
    /// Variable byte buffer whose size is an earlier field.
    pub vbuffer: Option<Attr<LenAttr>>,
    /// Bitmap whose bit count is an earlier field.
    pub bitmap: Option<Attr<LenAttr>>,
    /// Bound on a count read from the stream.
    pub max: Option<Attr<usize>>,
    /// `fn(&Self, version_id: u32) -> bool` run after this field loads (VMSTATE_VALIDATE).
    pub validate: Option<Attr<syn::Path>>,
    /// The field's name in descriptions and errors when it differs from the Rust
    /// name (QEMU names such as `queue.rptr`).
    pub rename: Option<Attr<String>>,
    /// Every key as written.
    pub keys: Keys,
}

impl<'a> FieldAttrs<'a> {
    /// Reads field number `index`.
    pub fn read(cx: &Ctxt, field: &'a syn::Field, index: usize) -> Self {
        let owner = Owner::Field(
            field
                .ident
                .as_ref()
                .map_or_else(|| index.to_string(), |id| id.to_string()),
        );
        let (keys, items) = keys::read(cx, &field.attrs, &owner);
        let mut out = FieldAttrs {
            ident: field.ident.as_ref(),
            ty: &field.ty,
            since: None,
            test: None,
            subsection: None,
            unused: None,
            varray: None,
            vbuffer: None,
            bitmap: None,
            max: None,
            validate: None,
            rename: None,
            keys,
        };
        for keys::Item { sym, value, tokens } in items {
            match (sym, value) {
                (Sym::Since, Value::U32(v)) => out.since = Some(Attr::new(v, tokens)),
                (Sym::Test, Value::Path(v)) => out.test = Some(Attr::new(v, tokens)),
                (Sym::Subsection, Value::Subsection(v)) => {
                    out.subsection = Some(Attr::new(v, tokens))
                }
                (Sym::Unused, Value::Usize(v)) => out.unused = Some(Attr::new(v, tokens)),
                (Sym::Varray, Value::Len(v)) => out.varray = Some(Attr::new(v, tokens)),
                (Sym::Vbuffer, Value::Len(v)) => out.vbuffer = Some(Attr::new(v, tokens)),
                (Sym::Bitmap, Value::Len(v)) => out.bitmap = Some(Attr::new(v, tokens)),
                (Sym::Max, Value::Usize(v)) => out.max = Some(Attr::new(v, tokens)),
                (Sym::Validate, Value::Path(v)) => out.validate = Some(Attr::new(v, tokens)),
                (Sym::Rename, Value::Str(v)) => out.rename = Some(Attr::new(v, tokens)),
                (_, Value::Flag) => {} // `skip`, `list`...: presence is in `keys`
                // `keys::read` gives each key the value its table kind calls for,
                // and only keys allowed on a field.
                (sym, _) => unreachable!("`{}` read as a field key", sym.name()),
            }
        }
        out
    }

    /// The count field of `varray`, `vbuffer` or `bitmap`.
    pub fn len_attr(&self, sym: Sym) -> Option<&Attr<LenAttr>> {
        match sym {
            Sym::Varray => self.varray.as_ref(),
            Sym::Vbuffer => self.vbuffer.as_ref(),
            Sym::Bitmap => self.bitmap.as_ref(),
            _ => None,
        }
    }
}
