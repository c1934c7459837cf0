//! `#[vmstate(...)]` on the struct or enum, as read by the attribute pass.

use super::keys::{self, Keys, Owner};
use super::value::Value;
use super::Attr;
use crate::ctxt::Ctxt;
use crate::symbol::Sym;

/// The container's keys. An enum's are read the same way; the enum checks reject
/// the ones that only mean something on a struct.
#[derive(Default)]
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
    /// Reads the container's attributes (`is_enum`: whose, for the messages).
    pub fn read(cx: &Ctxt, attrs: &[syn::Attribute], is_enum: bool) -> Self {
        let (keys, items) = keys::read(cx, attrs, &Owner::Container { is_enum });
        let mut out = ContainerAttrs {
            keys,
            ..ContainerAttrs::default()
        };
        for keys::Item { sym, value, tokens } in items {
            match (sym, value) {
                (Sym::Name, Value::Str(v)) => out.name = Some(Attr::new(v, tokens)),
                (Sym::Version, Value::U32(v)) => out.version = Some(Attr::new(v, tokens)),
                (Sym::MinimumVersion, Value::U32(v)) => {
                    out.minimum_version = Some(Attr::new(v, tokens))
                }
                (Sym::Priority, Value::Ident(v)) => out.priority = Some(Attr::new(v, tokens)),
                (Sym::PreSave, Value::Path(v)) => out.pre_save = Some(Attr::new(v, tokens)),
                (Sym::PostSave, Value::Path(v)) => out.post_save = Some(Attr::new(v, tokens)),
                (Sym::PreLoad, Value::Path(v)) => out.pre_load = Some(Attr::new(v, tokens)),
                (Sym::PostLoad, Value::Path(v)) => out.post_load = Some(Attr::new(v, tokens)),
                (Sym::Crate, Value::Path(v)) => out.runtime = Some(Attr::new(v, tokens)),
                // `keys::read` gives each key the value its table kind calls for,
                // and only keys allowed on a container.
                (sym, _) => unreachable!("`{}` read as a container key", sym.name()),
            }
        }
        out
    }
}
