//! `#[vmstate(...)]` on the struct or enum, as read by the attribute pass.

use super::keys::{self, Keys, Owner};
use super::Attr;
use crate::ctxt::Ctxt;
use crate::symbol::Sym;

/// The container's keys. An enum's are read the same way; the enum checks reject
/// the ones that only mean something on a struct.
pub struct ContainerAttrs {
    /// The vmsd name; defaults to the type name.
    pub name: Option<Attr<String>>,
    /// Current version (QEMU `version_id`); defaults to 0 as in QEMU.
    pub version: Option<Attr<u32>>,
    /// Oldest loadable version; defaults to `version`.
    pub minimum_version: Option<Attr<u32>>,
    /// A `MigrationPriority` variant, resolved by rustc in the generated code.
    pub priority: Option<Attr<syn::Ident>>,
    /// `fn(&Self) -> Result<(), E>`.
    pub pre_save: Option<Attr<syn::Path>>,
    /// `fn(&Self) -> Result<(), E>`.
    pub post_save: Option<Attr<syn::Path>>,
    /// `fn(&mut Self) -> Result<(), E>`.
    pub pre_load: Option<Attr<syn::Path>>,
    /// `fn(&mut Self, version_id: u32) -> Result<(), E>`.
    pub post_load: Option<Attr<syn::Path>>,
    /// `crate = "path"`: where the runtime is.
    pub runtime: Option<Attr<syn::Path>>,
    /// Every key as written.
    pub keys: Keys,
}

impl ContainerAttrs {
    pub fn read(cx: &Ctxt, attrs: &[syn::Attribute], is_enum: bool) -> Self {
        let (keys, items) = keys::read(cx, attrs, &Owner::Container { is_enum });
        let mut out = ContainerAttrs {
            name: None,
            version: None,
            minimum_version: None,
            priority: None,
            pre_save: None,
            post_save: None,
            pre_load: None,
            post_load: None,
            runtime: None,
            keys,
        };
        for keys::Item { sym, value, tokens } in items {
            match sym {
                Sym::Name => out.name = Some(Attr::new(value.string(), tokens)),
                Sym::Version => out.version = Some(Attr::new(value.u32(), tokens)),
                Sym::MinimumVersion => out.minimum_version = Some(Attr::new(value.u32(), tokens)),
                Sym::Priority => out.priority = Some(Attr::new(value.ident(), tokens)),
                Sym::PreSave => out.pre_save = Some(Attr::new(value.path(), tokens)),
                Sym::PostSave => out.post_save = Some(Attr::new(value.path(), tokens)),
                Sym::PreLoad => out.pre_load = Some(Attr::new(value.path(), tokens)),
                Sym::PostLoad => out.post_load = Some(Attr::new(value.path(), tokens)),
                Sym::Crate => out.runtime = Some(Attr::new(value.path(), tokens)),
                field_key => unreachable!("`{}` is not read on a container", field_key.name()),
            }
        }
        out
    }
}
