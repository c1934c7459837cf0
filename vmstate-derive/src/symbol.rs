//! Every `#[vmstate(...)]` key, declared once.
//!
//! [`KEYS`] is the one table of keys: its name, where it may be written, the form
//! of its value, what it does to a field, the example a wrong value's error shows,
//! and its QEMU equivalent. Everything that knows about keys reads it: the attribute
//! pass (`attr/`) for unknown, misplaced and duplicated keys, the "did you mean"
//! hints and value errors, the checks (`check/`) for which keys conflict, and a test
//! below that holds the crate documentation's attribute tables to it.

/// Where a key may be written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Place {
    /// `#[vmstate(...)]` on a struct.
    Struct,
    /// `#[vmstate(...)]` on an enum with an integer `#[repr]`.
    Enum,
    /// `#[vmstate(...)]` on a struct field.
    Field,
}

/// The form of a key's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `skip`: no value.
    Flag,
    /// `since = 2`: a `u32`.
    U32,
    /// `max = 256`: a `usize`.
    Usize,
    /// `name = "serial"`.
    Str,
    /// `test = has_x`, `pre_save = path::to::f` (or the path as a string);
    /// `takes` finishes "`key` takes ..." in the error for anything else.
    Path { takes: &'static str },
    /// `priority = Iommu`: a single identifier; `takes` as for `Path`.
    Ident { takes: &'static str },
    /// `varray(len = count_field)`: the name of an earlier field, inside
    /// parentheses under the key [`LEN`].
    Len,
    /// `subsection` or `subsection(needed = path)` (key [`NEEDED`]).
    Subsection,
}

/// What a field key does to its field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Decides how the field travels: at most one per field.
    Travel,
    /// Changes when the field is on the wire or bounds a count: meaningless on a
    /// field that is never on the wire or is a subsection.
    Modifier,
    /// Neither (container keys, `rename`).
    Other,
}

/// One row of [`KEYS`].
#[derive(Debug)]
pub struct Key {
    pub sym: Sym,
    /// As written in `#[vmstate(...)]`.
    pub name: &'static str,
    /// Where it may be written.
    pub on: &'static [Place],
    pub kind: Kind,
    pub role: Role,
    /// The value shown by a wrong value's error (`since = 3`); empty for flags
    /// and nested keys.
    pub example: &'static str,
    /// The key as the crate documentation's tables show it (`since = N`); this
    /// and `qemu` are what the test holding those tables to this one compares.
    #[cfg_attr(not(test), allow(dead_code))]
    pub usage: &'static str,
    /// The QEMU equivalent, as the documentation's tables show it (`—`: none).
    #[cfg_attr(not(test), allow(dead_code))]
    pub qemu: &'static str,
}

/// The key inside `varray(..)`, `vbuffer(..)` and `bitmap(..)`.
pub const LEN: &str = "len";
/// The key inside `subsection(..)`.
pub const NEEDED: &str = "needed";

const CONTAINER: &[Place] = &[Place::Struct];
const ANY_CONTAINER: &[Place] = &[Place::Struct, Place::Enum];
const FIELD: &[Place] = &[Place::Field];
const HOOK: Kind = Kind::Path {
    takes: "the path of a `fn(&Self) -> Result<(), E>`",
};
const PREDICATE: Kind = Kind::Path {
    takes: "the path of a `fn(&Self, u32) -> bool`",
};

macro_rules! keys {
    ($($sym:ident $name:literal on $on:ident, $kind:expr, $role:ident,
       example $example:literal, usage $usage:literal, qemu $qemu:literal;)*) => {
        /// A key, as the attribute pass and the checks refer to it: its position
        /// is its row in [`KEYS`].
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum Sym {
            $($sym),*
        }

        /// Every key, in the order the documentation lists them (container keys,
        /// then field keys).
        pub const KEYS: &[Key] = &[$(Key {
            sym: Sym::$sym,
            name: $name,
            on: $on,
            kind: $kind,
            role: Role::$role,
            example: $example,
            usage: $usage,
            qemu: $qemu,
        }),*];
    };
}

keys! {
    Name "name" on CONTAINER, Kind::Str, Other,
        example "\"serial\"", usage "name = \"...\"", qemu "`.name`";
    Version "version" on CONTAINER, Kind::U32, Other,
        example "2", usage "version = N", qemu "`.version_id`";
    MinimumVersion "minimum_version" on CONTAINER, Kind::U32, Other,
        example "2", usage "minimum_version = N", qemu "`.minimum_version_id`";
    Priority "priority" on CONTAINER, Kind::Ident { takes: "a `MigrationPriority` variant" }, Other,
        example "Iommu", usage "priority = Variant", qemu "`.priority`";
    PreSave "pre_save" on CONTAINER, HOOK, Other,
        example "my_fn", usage "pre_save = path", qemu "`.pre_save`";
    PostSave "post_save" on CONTAINER, HOOK, Other,
        example "my_fn", usage "post_save = path", qemu "`.post_save`";
    PreLoad "pre_load" on CONTAINER, Kind::Path { takes: "the path of a `fn(&mut Self) -> Result<(), E>`" }, Other,
        example "my_fn", usage "pre_load = path", qemu "`.pre_load`";
    PostLoad "post_load" on CONTAINER, Kind::Path { takes: "the path of a `fn(&mut Self, u32) -> Result<(), E>`" }, Other,
        example "my_fn", usage "post_load = path", qemu "`.post_load`";
    Crate "crate" on ANY_CONTAINER, Kind::Path { takes: "the path at which the runtime crate is reachable (a VMM's re-export of `vmstate_runtime`)" }, Other,
        example "\"my_vmm::vmstate\"", usage "crate = \"path\"", qemu "—";
    Since "since" on FIELD, Kind::U32, Modifier,
        example "3", usage "since = N", qemu "`_V(.., N)`";
    Test "test" on FIELD, PREDICATE, Modifier,
        example "my_fn", usage "test = path", qemu "`_TEST`";
    Subsection "subsection" on FIELD, Kind::Subsection, Travel,
        example "", usage "subsection(needed = path)", qemu "subsections";
    WithTmp "with_tmp" on FIELD, Kind::Flag, Travel,
        example "", usage "with_tmp", qemu "`VMSTATE_WITH_TMP`";
    Skip "skip" on FIELD, Kind::Flag, Travel,
        example "", usage "skip", qemu "—";
    Unused "unused" on FIELD, Kind::Usize, Travel,
        example "4", usage "unused = N", qemu "`VMSTATE_UNUSED`";
    Varray "varray" on FIELD, Kind::Len, Travel,
        example "", usage "varray(len = f)", qemu "`VMSTATE_VARRAY_*`";
    Vbuffer "vbuffer" on FIELD, Kind::Len, Travel,
        example "", usage "vbuffer(len = f)", qemu "`VMSTATE_VBUFFER*`";
    Bitmap "bitmap" on FIELD, Kind::Len, Travel,
        example "", usage "bitmap(len = f)", qemu "`VMSTATE_BITMAP`";
    List "list" on FIELD, Kind::Flag, Travel,
        example "", usage "list", qemu "`VMSTATE_QTAILQ_V` / `QLIST_V`";
    Max "max" on FIELD, Kind::Usize, Modifier,
        example "256", usage "max = N", qemu "—";
    Equal "equal" on FIELD, Kind::Flag, Travel,
        example "", usage "equal", qemu "`*_EQUAL`";
    PositiveLe "positive_le" on FIELD, Kind::Flag, Travel,
        example "", usage "positive_le", qemu "`VMSTATE_INT32_POSITIVE_LE`";
    Timer "timer" on FIELD, Kind::Flag, Travel,
        example "", usage "timer", qemu "`VMSTATE_TIMER`";
    Buffer "buffer" on FIELD, Kind::Flag, Travel,
        example "", usage "buffer", qemu "`VMSTATE_BUFFER`";
    Validate "validate" on FIELD, PREDICATE, Modifier,
        example "my_fn", usage "validate = path", qemu "`VMSTATE_VALIDATE`";
    Rename "rename" on FIELD, Kind::Str, Other,
        example "\"serial\"", usage "rename = \"a.b\"", qemu "—";
}

impl Sym {
    /// This key's row of [`KEYS`].
    pub fn key(self) -> &'static Key {
        &KEYS[self as usize]
    }

    /// The key as written.
    pub fn name(self) -> &'static str {
        self.key().name
    }
}

impl Key {
    /// Whether the key may be written at `place`.
    pub fn allowed_on(&self, place: Place) -> bool {
        self.on.contains(&place)
    }

    /// Whether the key belongs on a struct or enum (rather than a field).
    pub fn is_container_key(&self) -> bool {
        self.allowed_on(Place::Struct) || self.allowed_on(Place::Enum)
    }
}

/// The key called `name`, wherever it is allowed.
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The names of the keys allowed by `allowed`, in table order.
pub fn names(allowed: impl Fn(&Key) -> bool) -> Vec<&'static str> {
    KEYS.iter().filter(|k| allowed(k)).map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sym_is_its_own_row() {
        for (i, key) in KEYS.iter().enumerate() {
            assert_eq!(key.sym as usize, i, "row {i} is `{}`", key.name);
            assert_eq!(lookup(key.name).map(|k| k.sym), Some(key.sym));
        }
        assert_eq!(Sym::Rename.name(), "rename");
    }

    #[test]
    fn examples_are_given_for_every_valued_key() {
        for key in KEYS {
            let needs_example = matches!(
                key.kind,
                Kind::U32 | Kind::Usize | Kind::Str | Kind::Path { .. } | Kind::Ident { .. }
            );
            assert_eq!(!key.example.is_empty(), needs_example, "`{}`", key.name);
            assert!(key.usage.starts_with(key.name), "`{}`", key.name);
        }
    }

    /// The rows of the crate documentation's table under `heading`: (key, QEMU).
    fn doc_rows(heading: &str) -> Vec<(String, String)> {
        let docs = include_str!("lib.rs");
        let mut lines = docs
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(str::trim)
            .skip_while(|l| *l != heading);
        assert!(lines.next().is_some(), "no `{heading}` in the crate docs");
        lines
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and `|---|` rows
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let key = cells[0].trim_start_matches("| ").trim_matches('`');
                (key.to_string(), cells[1].to_string())
            })
            .collect()
    }

    fn table_rows(allowed: impl Fn(&Key) -> bool) -> Vec<(String, String)> {
        KEYS.iter()
            .filter(|k| allowed(k))
            .map(|k| (k.usage.to_string(), k.qemu.to_string()))
            .collect()
    }

    #[test]
    fn crate_docs_list_exactly_the_keys() {
        assert_eq!(
            doc_rows("# Container attributes (`#[vmstate(...)]` on the struct)"),
            table_rows(Key::is_container_key)
        );
        assert_eq!(
            doc_rows("# Field attributes"),
            table_rows(|k| k.allowed_on(Place::Field))
        );
    }
}
