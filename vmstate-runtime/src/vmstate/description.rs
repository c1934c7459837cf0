//! Static, `const`-constructible descriptions of VMState types.
//!
//! The derive emits one [`VmStateDescription`] per type. It is the single source of
//! truth from which wire-format documentation (the layout table) and the vmdesc
//! trailer are produced; save and load code is generated from the same checked
//! attributes, so the two cannot drift apart.

use crate::error::{ErrorKind, Result};
use crate::priority::MigrationPriority;

/// The static description of a VMState type (QEMU's `VMStateDescription`).
///
/// ```
/// use vmstate_runtime::{VmState, VmStateDescription};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "uart", version = 2, minimum_version = 1)]
/// struct Uart { lcr: u8, #[vmstate(since = 2)] scratch: u8 }
///
/// let d: &VmStateDescription = Uart::DESCRIPTION;
/// assert_eq!((d.name, d.version_id, d.minimum_version_id), ("uart", 2, 1));
/// assert_eq!(d.fields.len(), 2);
/// assert_eq!(d.field("scratch").unwrap().version_id, 2);
/// assert!(d.subsections.is_empty());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct VmStateDescription {
    /// The vmsd name (section idstr for top-level devices, prefix for subsections).
    pub name: &'static str,
    /// Current version: what `save` writes.
    pub version_id: u32,
    /// Oldest version `load` accepts.
    pub minimum_version_id: u32,
    /// Section ordering priority.
    pub priority: MigrationPriority,
    /// Fields in wire order (including `skip`ped fields, marked as such).
    pub fields: &'static [FieldDescription],
    /// Subsections in the order they are written.
    pub subsections: &'static [SubsectionDescription],
    /// Which hooks the type declares.
    pub hooks: Hooks,
}

/// Which hooks a type declares (QEMU's pre_save/post_save/pre_load/post_load).
///
/// ```
/// use vmstate_runtime::{Hooks, VmState};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1, post_load = Dev::fixup)]
/// struct Dev { a: u8 }
///
/// impl Dev {
///     fn fixup(&mut self, _version_id: u32) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// assert_eq!(Dev::DESCRIPTION.hooks, Hooks { post_load: true, ..Hooks::default() });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `pre_save` is set.
    pub pre_save: bool,
    /// `post_save` is set.
    pub post_save: bool,
    /// `pre_load` is set.
    pub pre_load: bool,
    /// `post_load` is set.
    pub post_load: bool,
}

/// How a field's elements are laid out.
///
/// ```
/// use vmstate_runtime::{FieldLayout, VmState};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev {
///     flag: u8,
///     regs: [u16; 4],
///     len: u8,
///     #[vmstate(varray(len = len), max = 8)]
///     fifo: Vec<u8>,
///     #[vmstate(skip)]
///     cache: u32,
/// }
///
/// let layouts: Vec<FieldLayout> = Dev::DESCRIPTION.fields.iter().map(|f| f.layout).collect();
/// assert_eq!(
///     layouts,
///     [
///         FieldLayout::Single,
///         FieldLayout::Array { len: 4 },
///         FieldLayout::Single,
///         FieldLayout::VarArray { count_field: "len", max: 8 },
///         FieldLayout::Skipped,
///     ]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldLayout {
    /// One element.
    Single,
    /// A fixed number of elements, back to back (VMS_ARRAY).
    Array {
        /// Element count.
        len: usize,
    },
    /// A count read from an earlier field (VMS_VARRAY_* / VMS_VBUFFER).
    VarArray {
        /// Name of the count field.
        count_field: &'static str,
        /// Bound enforced on load.
        max: usize,
    },
    /// A bitmap whose bit count comes from an earlier field (be64 words).
    Bitmap {
        /// Name of the field holding the number of bits.
        bits_field: &'static str,
        /// Bound on the number of bits.
        max_bits: usize,
    },
    /// A QTAILQ/QLIST-style list: per element 0x01 + body, then 0x00.
    List {
        /// Bound on the element count enforced on load.
        max: usize,
    },
    /// Bytes with no meaning: zeros written, skipped on load (VMSTATE_UNUSED).
    Unused {
        /// Number of bytes.
        size: usize,
    },
    /// A temporary migration view of the parent (VMSTATE_WITH_TMP).
    Tmp,
    /// Not on the wire (`#[vmstate(skip)]`).
    Skipped,
}

impl FieldLayout {
    /// The layout a value of element type `ty` has on its own: an array of its
    /// flattened length, or a single value.
    ///
    /// ```
    /// use vmstate_runtime::{FieldLayout, VmStateField};
    ///
    /// assert_eq!(FieldLayout::of(u8::FIELD_TYPE), FieldLayout::Single);
    /// assert_eq!(FieldLayout::of(<[[u16; 2]; 3]>::FIELD_TYPE), FieldLayout::Array { len: 6 });
    /// ```
    pub const fn of(ty: FieldType) -> Self {
        match ty.array_len {
            Some(len) => FieldLayout::Array { len },
            None => FieldLayout::Single,
        }
    }
}

/// The wire type of a field's element, as its Rust type reports it.
///
/// ```
/// use vmstate_runtime::{FieldType, VmState, VmStateField};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "inner", version = 1)]
/// struct Inner { x: u32 }
///
/// let t: FieldType = <[i16; 3]>::FIELD_TYPE;
/// assert_eq!((t.info, t.size, t.array_len), ("int16", Some(2), Some(3)));
/// assert!(t.nested.is_none());
/// // A nested struct reports its own description.
/// assert_eq!(Inner::FIELD_TYPE.info, "struct");
/// assert_eq!(Inner::FIELD_TYPE.nested.unwrap().name, "inner");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FieldType {
    /// QEMU's VMStateInfo name for the element (`"uint8"`, `"int32"`, `"bool"`,
    /// `"struct"`, `"buffer"`, ...).
    pub info: &'static str,
    /// Wire size of one element when it is fixed (`None` for variable-size bodies).
    pub size: Option<usize>,
    /// For fixed arrays, the total element count (nested arrays are flattened).
    pub array_len: Option<usize>,
    /// For nested structs, their description.
    pub nested: Option<&'static VmStateDescription>,
}

impl FieldType {
    /// A scalar of the given QEMU info name and size.
    ///
    /// ```
    /// use vmstate_runtime::FieldType;
    ///
    /// const TIMER: FieldType = FieldType::scalar("timer", 8);
    /// assert_eq!((TIMER.info, TIMER.size), ("timer", Some(8)));
    /// assert_eq!(TIMER.array_len, None);
    /// ```
    pub const fn scalar(info: &'static str, size: usize) -> Self {
        FieldType {
            info,
            size: Some(size),
            array_len: None,
            nested: None,
        }
    }

    /// The same element type, with a different info name (e.g. `"uint32 equal"`).
    ///
    /// ```
    /// use vmstate_runtime::FieldType;
    ///
    /// let t = FieldType::scalar("uint32", 4).with_info("uint32 equal");
    /// assert_eq!((t.info, t.size), ("uint32 equal", Some(4)));
    /// ```
    pub const fn with_info(self, info: &'static str) -> Self {
        FieldType { info, ..self }
    }
}

/// The description of one field.
///
/// ```
/// use vmstate_runtime::{FieldDescription, FieldLayout, VmState};
///
/// fn is_even(dev: &Dev, _version_id: u32) -> bool {
///     dev.a % 2 == 0
/// }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 3)]
/// struct Dev {
///     a: u8,
///     #[vmstate(since = 2)]
///     b: [u32; 2],
///     #[vmstate(test = is_even)]
///     c: u16,
/// }
///
/// let b: &FieldDescription = Dev::DESCRIPTION.field("b").unwrap();
/// assert_eq!((b.name, b.ty.info, b.version_id), ("b", "uint32", 2));
/// assert_eq!(b.layout, FieldLayout::Array { len: 2 });
/// assert!(!b.has_test);
/// assert!(Dev::DESCRIPTION.field("c").unwrap().has_test);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FieldDescription {
    /// The Rust field name (also the QEMU field name).
    pub name: &'static str,
    /// Element wire type.
    pub ty: FieldType,
    /// Layout of the elements.
    pub layout: FieldLayout,
    /// First version in which the field is on the wire (`since`, QEMU `_V`).
    pub version_id: u32,
    /// Presence decided by a `test` function instead of the version (QEMU `_TEST`).
    pub has_test: bool,
    /// A `validate` check runs after this field is loaded.
    pub has_validate: bool,
}

impl FieldDescription {
    /// A field on the wire from version 0, with no test or validation.
    ///
    /// ```
    /// use vmstate_runtime::{FieldDescription, FieldLayout, FieldType};
    ///
    /// const PAD: FieldDescription =
    ///     FieldDescription::new("pad", FieldType::scalar("unused_buffer", 3), FieldLayout::Unused { size: 3 });
    /// assert_eq!(PAD.fixed_wire_size(), Some(3));
    /// assert_eq!((PAD.version_id, PAD.has_test, PAD.has_validate), (0, false, false));
    /// ```
    pub const fn new(name: &'static str, ty: FieldType, layout: FieldLayout) -> Self {
        FieldDescription {
            name,
            ty,
            layout,
            version_id: 0,
            has_test: false,
            has_validate: false,
        }
    }

    /// A field of element type `ty` laid out as that type is on its own
    /// ([`FieldLayout::of`]).
    ///
    /// ```
    /// use vmstate_runtime::{FieldDescription, FieldLayout, VmStateField};
    ///
    /// const REGS: FieldDescription = FieldDescription::of_type("regs", <[u32; 4]>::FIELD_TYPE);
    /// assert_eq!(REGS.layout, FieldLayout::Array { len: 4 });
    /// assert_eq!(REGS.fixed_wire_size(), Some(16));
    /// ```
    pub const fn of_type(name: &'static str, ty: FieldType) -> Self {
        Self::new(name, ty, FieldLayout::of(ty))
    }

    /// The same field, on the wire only from `version_id` on (`since`).
    ///
    /// ```
    /// use vmstate_runtime::{FieldDescription, VmStateField};
    ///
    /// assert_eq!(FieldDescription::of_type("mode", u8::FIELD_TYPE).since(2).version_id, 2);
    /// ```
    pub const fn since(self, version_id: u32) -> Self {
        FieldDescription { version_id, ..self }
    }

    /// The same field, present only when its `test` says so.
    ///
    /// ```
    /// use vmstate_runtime::{FieldDescription, VmStateField};
    ///
    /// assert!(FieldDescription::of_type("mode", u8::FIELD_TYPE).with_test().has_test);
    /// ```
    pub const fn with_test(self) -> Self {
        FieldDescription {
            has_test: true,
            ..self
        }
    }

    /// The same field, with a `validate` check after it loads.
    ///
    /// ```
    /// use vmstate_runtime::{FieldDescription, VmStateField};
    ///
    /// assert!(FieldDescription::of_type("mode", u8::FIELD_TYPE).with_validate().has_validate);
    /// ```
    pub const fn with_validate(self) -> Self {
        FieldDescription {
            has_validate: true,
            ..self
        }
    }

    /// Whether the field is written at all (not skipped).
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u8, #[vmstate(skip)] host_only: u64 }
    ///
    /// assert!(Dev::DESCRIPTION.field("a").unwrap().is_on_wire());
    /// assert!(!Dev::DESCRIPTION.field("host_only").unwrap().is_on_wire());
    /// ```
    pub const fn is_on_wire(&self) -> bool {
        !matches!(self.layout, FieldLayout::Skipped)
    }

    /// The field's wire size when it is fixed and independent of the value.
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev {
    ///     regs: [u32; 4],
    ///     len: u8,
    ///     #[vmstate(varray(len = len), max = 16)]
    ///     fifo: Vec<u8>,
    ///     #[vmstate(unused = 3)]
    ///     pad: (),
    /// }
    ///
    /// let size = |name| Dev::DESCRIPTION.field(name).unwrap().fixed_wire_size();
    /// assert_eq!(size("regs"), Some(16));
    /// assert_eq!(size("fifo"), None); // depends on `len`
    /// assert_eq!(size("pad"), Some(3));
    /// ```
    pub const fn fixed_wire_size(&self) -> Option<usize> {
        match (self.layout, self.ty.size) {
            (FieldLayout::Skipped, _) => Some(0),
            // The temporary's own fields are written inline.
            (FieldLayout::Tmp, s) => s,
            (FieldLayout::Unused { size }, _) => Some(size),
            (FieldLayout::Single, Some(s)) => Some(s),
            (FieldLayout::Array { len }, Some(s)) => Some(s * len),
            _ => None,
        }
    }
}

/// A subsection of a description.
///
/// ```
/// use vmstate_runtime::{SubsectionDescription, VmState};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev/extra", version = 1)]
/// struct Extra { x: u8 }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev {
///     a: u8,
///     #[vmstate(subsection)]
///     extra: Extra,
/// }
///
/// let s: &SubsectionDescription = &Dev::DESCRIPTION.subsections[0];
/// assert_eq!(s.field, "extra");
/// assert_eq!(s.description.name, "dev/extra");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SubsectionDescription {
    /// The Rust field holding the subsection's state.
    pub field: &'static str,
    /// The subsection type's own description (its `name` is the wire name).
    pub description: &'static VmStateDescription,
}

impl VmStateDescription {
    /// Checks `version_id` against the current and minimum versions, as QEMU's
    /// `vmstate_load_state` does before loading anything.
    ///
    /// ```
    /// use vmstate_runtime::{ErrorKind, VmState};
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "d", version = 3, minimum_version = 2)]
    /// struct D { x: u8 }
    ///
    /// assert!(D::DESCRIPTION.check_version(2).is_ok());
    /// let e = D::DESCRIPTION.check_version(4).unwrap_err();
    /// assert!(matches!(e.kind(), ErrorKind::VersionTooNew { version: 4, max: 3 }));
    /// assert!(D::DESCRIPTION.check_version(1).is_err());
    /// ```
    #[inline]
    pub fn check_version(&self, version_id: u32) -> Result<()> {
        if version_id > self.version_id {
            return Err(ErrorKind::VersionTooNew {
                version: version_id,
                max: self.version_id,
            }
            .into());
        }
        if version_id < self.minimum_version_id {
            return Err(ErrorKind::VersionTooOld {
                version: version_id,
                min: self.minimum_version_id,
            }
            .into());
        }
        Ok(())
    }

    /// Looks a field up by name.
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { status: u8, mode: u16 }
    ///
    /// assert_eq!(Dev::DESCRIPTION.field("mode").unwrap().ty.info, "uint16");
    /// assert!(Dev::DESCRIPTION.field("nope").is_none());
    /// ```
    pub fn field(&self, name: &str) -> Option<&FieldDescription> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Wire size of the body when every field is fixed-size and there are no
    /// subsections, tests or version-dependent fields (what QEMU would call
    /// "compressible").
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "fixed", version = 1)]
    /// struct Fixed { a: u32, b: [u8; 3], c: bool }
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "var", version = 1)]
    /// struct Var { n: u8, #[vmstate(varray(len = n), max = 4)] v: Vec<u8> }
    ///
    /// assert_eq!(Fixed::DESCRIPTION.fixed_body_size(), Some(8));
    /// assert_eq!(Var::DESCRIPTION.fixed_body_size(), None);
    /// ```
    pub const fn fixed_body_size(&self) -> Option<usize> {
        if !self.subsections.is_empty() {
            return None;
        }
        let mut total = 0;
        let mut i = 0;
        while i < self.fields.len() {
            let f = &self.fields[i];
            if f.has_test {
                return None;
            }
            match f.fixed_wire_size() {
                Some(s) => total += s,
                None => return None,
            }
            i += 1;
        }
        Some(total)
    }

    /// Renders a human-readable wire layout table (what the examples print).
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "timer", version = 2)]
    /// struct T { count: u32, #[vmstate(since = 2)] mode: u8 }
    ///
    /// let table = T::DESCRIPTION.layout_table();
    /// assert!(table.contains("count"));
    /// assert!(table.contains("since 2"));
    /// ```
    pub fn layout_table(&self) -> String {
        let mut out = String::new();
        self.write_layout(&mut out, 0);
        out
    }

    fn write_layout(&self, out: &mut String, depth: usize) {
        use std::fmt::Write;
        let pad = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{pad}\"{}\" version {} (minimum {}), priority {:?}",
            self.name, self.version_id, self.minimum_version_id, self.priority
        );
        for f in self.fields {
            let size = match f.fixed_wire_size() {
                Some(s) => format!("{s} B"),
                None => "variable".to_string(),
            };
            let layout = match f.layout {
                FieldLayout::Single => String::new(),
                FieldLayout::Array { len } => format!(" [{len}]"),
                FieldLayout::VarArray { count_field, max } => {
                    format!(" [{count_field}, max {max}]")
                }
                FieldLayout::Bitmap {
                    bits_field,
                    max_bits,
                } => format!(" bitmap[{bits_field} bits, max {max_bits}]"),
                FieldLayout::List { max } => format!(" list(max {max})"),
                FieldLayout::Unused { size } => format!(" unused({size})"),
                FieldLayout::Tmp => " with_tmp".to_string(),
                FieldLayout::Skipped => " (not migrated)".to_string(),
            };
            let mut cond = String::new();
            if f.version_id > 0 {
                let _ = write!(cond, " since {}", f.version_id);
            }
            if f.has_test {
                cond.push_str(" if test");
            }
            if f.has_validate {
                cond.push_str(" +validate");
            }
            let _ = writeln!(
                out,
                "{pad}  {:<24} {:<14}{layout} {size}{cond}",
                f.name, f.ty.info
            );
            if let (Some(nested), true) = (f.ty.nested, f.is_on_wire()) {
                nested.write_layout(out, depth + 2);
            }
        }
        for s in self.subsections {
            let _ = writeln!(out, "{pad}  subsection (field {}):", s.field);
            s.description.write_layout(out, depth + 2);
        }
    }
}
