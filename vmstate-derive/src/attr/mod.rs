//! The derive input with its `#[vmstate(...)]` attributes read, in one pass over
//! the input: every key is looked up in the [symbol table](crate::symbol), and every
//! syntax mistake (unknown, misplaced or duplicated key, value of the wrong form,
//! mistake inside `varray(..)`) is reported, at its own tokens, before the checks
//! (`check/`) give the keys their meaning.

mod container;
mod field;
mod keys;
mod nested;
mod shape;
mod value;

use proc_macro2::TokenStream;

pub use container::ContainerAttrs;
pub use field::FieldAttrs;
pub use nested::SubsectionAttr;

use crate::ctxt::Ctxt;

/// A key's value and the tokens it was written as (`since = 3`), where errors
/// about it point.
pub struct Attr<T> {
    pub value: T,
    pub tokens: TokenStream,
}

impl<T> Attr<T> {
    fn new(value: T, tokens: TokenStream) -> Self {
        Attr { value, tokens }
    }
}

impl<T> std::ops::Deref for Attr<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// A derive input of a supported shape, with its attributes read.
pub struct Input<'a> {
    pub ident: &'a syn::Ident,
    pub generics: &'a syn::Generics,
    pub container: ContainerAttrs,
    pub data: Data<'a>,
}

/// The fields of a struct, or the variants of an enum.
pub enum Data<'a> {
    Struct(Vec<FieldAttrs<'a>>),
    Enum {
        /// The integer `#[repr(..)]`, if there is one.
        repr: Option<syn::Ident>,
        variants: Vec<&'a syn::Ident>,
    },
}

impl<'a> Input<'a> {
    /// Reads the input; `None` (with the errors reported) when its shape cannot
    /// derive VmState. The attributes are read in any case, so their mistakes are
    /// reported together with the shape's.
    pub fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput) -> Option<Self> {
        let shape_ok = shape::check(cx, input);
        let is_enum = matches!(input.data, syn::Data::Enum(_));
        let container = ContainerAttrs::read(cx, &input.attrs, is_enum);
        let data = match &input.data {
            syn::Data::Struct(s) => Data::Struct(
                s.fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| FieldAttrs::read(cx, f, i))
                    .collect(),
            ),
            syn::Data::Enum(e) => {
                for v in &e.variants {
                    keys::read(cx, &v.attrs, &keys::Owner::Variant(v.ident.to_string()));
                }
                Data::Enum {
                    repr: integer_repr(&input.attrs),
                    variants: e.variants.iter().map(|v| &v.ident).collect(),
                }
            }
            syn::Data::Union(_) => return None,
        };
        shape_ok.then_some(Input {
            ident: &input.ident,
            generics: &input.generics,
            container,
            data,
        })
    }
}

/// The integer type of `#[repr(u8)]` (or `#[repr(C, u16)]`...).
fn integer_repr(attrs: &[syn::Attribute]) -> Option<syn::Ident> {
    let mut repr = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(id) = meta.path.get_ident() {
                if matches!(
                    id.to_string().as_str(),
                    "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64"
                ) {
                    repr = Some(id.clone());
                }
            }
            Ok(())
        });
    }
    repr
}
