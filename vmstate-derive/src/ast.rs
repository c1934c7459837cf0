//! The checked IR of a derive input: what `check/` makes of the attributes, and all
//! that code generation reads (never the raw attributes), so every rule lives in
//! `check/`. It only exists for an input without errors.

use syn::{Expr, Ident, Path, Type};

/// A checked derive input.
pub enum Input<'a> {
    Struct(Container<'a>),
    Enum(ReprEnum<'a>),
}

/// A struct deriving `VmState`.
pub struct Container<'a> {
    pub ident: &'a Ident,
    pub generics: &'a syn::Generics,
    /// The path generated code names the runtime by (`crate = "..."`, default
    /// `::vmstate_runtime`).
    pub runtime: Path,
    pub name: String,
    pub version: u32,
    pub minimum_version: u32,
    /// A `MigrationPriority` variant as the user wrote it (with its span, so rustc
    /// reports an unknown one there), or `Default`.
    pub priority: Ident,
    pub hooks: Hooks<'a>,
    /// Wire-order fields (everything that is not a subsection).
    pub fields: Vec<Field<'a>>,
    /// Subsection fields in declaration order (the order they are written).
    pub subsections: Vec<Subsection<'a>>,
}

/// The four hooks.
#[derive(Default)]
pub struct Hooks<'a> {
    pub pre_save: Option<&'a Path>,
    pub post_save: Option<&'a Path>,
    pub pre_load: Option<&'a Path>,
    pub post_load: Option<&'a Path>,
}

/// One body field.
pub struct Field<'a> {
    pub ident: &'a Ident,
    /// The name in descriptions, vmdesc and errors (`rename`, else the ident).
    pub wire_name: String,
    pub ty: &'a Type,
    pub kind: FieldKind<'a>,
    /// First version with this field on the wire.
    pub since: u32,
    /// Presence test (overrides `since`, as in QEMU).
    pub test: Option<&'a Path>,
    /// Check run after the field loads.
    pub validate: Option<&'a Path>,
}

impl Field<'_> {
    /// Whether the field can join a run of plain fields, saved and loaded with one
    /// bounds check: an integer, bool or array of them, always on the wire.
    pub fn is_plain(&self) -> bool {
        matches!(self.kind, FieldKind::Plain | FieldKind::Buffer)
            && self.since == 0
            && self.test.is_none()
            && self.validate.is_none()
            && crate::types::is_plain_type(self.ty)
    }
}

/// Splits fields, in order, into runs of two or more plain fields (handled with
/// one bounds check) and single fields; `run` and `single` generate each part.
pub fn by_runs<T>(
    fields: &[Field],
    mut run: impl FnMut(&[Field]) -> T,
    mut single: impl FnMut(&Field) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        let mut end = i;
        while end < fields.len() && fields[end].is_plain() {
            end += 1;
        }
        if end - i >= 2 {
            out.push(run(&fields[i..end]));
            i = end;
        } else {
            out.push(single(&fields[i]));
            i += 1;
        }
    }
    out
}

/// How a field travels.
pub enum FieldKind<'a> {
    /// Through its `VmStateField` impl (scalars, arrays, nested structs, boxes, enums).
    Plain,
    /// A `[u8; N]` described as one opaque buffer.
    Buffer,
    /// A `Vec<elem>` whose count is the earlier field `len`.
    VarVec {
        elem: &'a Type,
        len: &'a Ident,
        max: usize,
        buffer: bool,
    },
    /// The first `len` elements of a `[elem; n]`.
    VarArray {
        elem: &'a Type,
        n: &'a Expr,
        len: &'a Ident,
        max: Option<usize>,
        buffer: bool,
    },
    /// A `Vec<u64>` bitmap of `len` bits.
    Bitmap { len: &'a Ident, max: usize },
    /// A `Vec<elem>` travelling as a QTAILQ/QLIST.
    List { elem: &'a Type, max: usize },
    /// N padding bytes.
    Unused(usize),
    /// `Option<u64>` timer.
    Timer,
    /// Must equal the destination's value.
    Equal,
    /// 0 <= incoming <= current.
    PositiveLe,
    /// `WithTmp<T>` temporary view.
    WithTmp(&'a Type),
    /// Not migrated.
    Skip,
}

/// A subsection field.
pub struct Subsection<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub needed: Option<&'a Path>,
}

/// A unit-variant enum with an integer representation.
pub struct ReprEnum<'a> {
    pub ident: &'a Ident,
    pub generics: &'a syn::Generics,
    /// As [`Container::runtime`].
    pub runtime: Path,
    pub repr: Ident,
    pub variants: Vec<&'a Ident>,
}
