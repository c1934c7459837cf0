//! Attribute receivers: what `#[vmstate(...)]` may say, parsed by darling.
//!
//! Only syntax is handled here (unknown keys with "did you mean", duplicate keys,
//! value types). Meaning (conflicts, versions, length fields) is checked in
//! `check.rs`, where all problems are accumulated.

use darling::util::{Flag, SpannedValue};
use darling::{FromDeriveInput, FromField, FromMeta, FromVariant};

/// `#[vmstate(...)]` on the struct or enum.
#[derive(FromDeriveInput)]
#[darling(
    attributes(vmstate),
    supports(struct_named, enum_unit),
    forward_attrs(repr)
)]
pub struct ContainerAttrs {
    pub ident: syn::Ident,
    pub generics: syn::Generics,
    pub data: darling::ast::Data<VariantAttrs, FieldAttrs>,
    /// Forwarded `#[repr(...)]` (enums need an integer representation).
    pub attrs: Vec<syn::Attribute>,

    /// The vmsd name; defaults to the type name.
    pub name: Option<SpannedValue<String>>,
    /// Current version (QEMU `version_id`); defaults to 0 as in QEMU.
    pub version: Option<SpannedValue<u32>>,
    /// Oldest loadable version; defaults to `version`.
    pub minimum_version: Option<SpannedValue<u32>>,
    /// A `MigrationPriority` variant.
    pub priority: Option<syn::Ident>,
    /// `fn(&Self) -> Result<(), E>`.
    pub pre_save: Option<syn::Path>,
    /// `fn(&Self) -> Result<(), E>`.
    pub post_save: Option<syn::Path>,
    /// `fn(&mut Self) -> Result<(), E>`.
    pub pre_load: Option<syn::Path>,
    /// `fn(&mut Self, version_id: u32) -> Result<(), E>`.
    pub post_load: Option<syn::Path>,
}

/// One unit variant of an enum field type.
#[derive(FromVariant)]
#[darling(attributes(vmstate))]
pub struct VariantAttrs {
    pub ident: syn::Ident,
}

/// `len = field` inside `varray(...)`, `vbuffer(...)` and `bitmap(...)`.
#[derive(FromMeta)]
pub struct LenAttr {
    pub len: syn::Ident,
}

/// `subsection(needed = path)`.
#[derive(FromMeta, Default)]
#[darling(default)]
pub struct SubsectionAttr {
    /// `fn(&Self) -> bool`; without it the subsection is always sent.
    pub needed: Option<syn::Path>,
}

/// `#[vmstate(...)]` on a field.
#[derive(FromField)]
#[darling(attributes(vmstate))]
pub struct FieldAttrs {
    pub ident: Option<syn::Ident>,
    pub ty: syn::Type,

    /// On the wire only for versions >= N (QEMU `_V`).
    pub since: Option<SpannedValue<u32>>,
    /// `fn(&Self, version_id: u32) -> bool` decides presence (QEMU `_TEST`).
    pub test: Option<syn::Path>,
    /// This field is a subsection.
    pub subsection: Option<SpannedValue<SubsectionAttr>>,
    /// A `WithTmp<T>` marker: temporary migration view (VMSTATE_WITH_TMP).
    pub with_tmp: Flag,
    /// Not migrated.
    pub skip: Flag,
    /// N bytes of padding (VMSTATE_UNUSED).
    pub unused: Option<SpannedValue<usize>>,
    /// Variable array whose count is an earlier field.
    pub varray: Option<SpannedValue<LenAttr>>,
    /// Variable byte buffer whose size is an earlier field.
    pub vbuffer: Option<SpannedValue<LenAttr>>,
    /// Bitmap whose bit count is an earlier field.
    pub bitmap: Option<SpannedValue<LenAttr>>,
    /// QTAILQ/QLIST-style list.
    pub list: Flag,
    /// Bound on a count read from the stream.
    pub max: Option<SpannedValue<usize>>,
    /// Load fails unless the incoming value equals ours (*_EQUAL).
    pub equal: Flag,
    /// 0 <= incoming <= current (INT32_POSITIVE_LE).
    pub positive_le: Flag,
    /// `Option<u64>` expiry in ns, all ones = disarmed.
    pub timer: Flag,
    /// Describe a `[u8; N]` as an opaque "buffer" (VMSTATE_BUFFER).
    pub buffer: Flag,
    /// `fn(&Self, version_id: u32) -> bool` run after this field loads (VMSTATE_VALIDATE).
    pub validate: Option<syn::Path>,
}
