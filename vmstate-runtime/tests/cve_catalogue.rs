//! The generic rows of the malicious-stream catalogue (qemu-wire.md §9, "generic
//! framework-level cases"), one named test each: a good stream or body with one
//! thing broken, and the typed [`ErrorKind`] its load must fail with (or the
//! sanitised value QEMU loads). Stream rows break the reference stream of
//! `common::stream` (header, configuration, START/PART/END of an iterative
//! section, FULL device sections); field rows load one body with `from_bytes`.
//! The device rows (PS/2, RAM) are in vmstate-devices/tests/cve_catalogue.rs,
//! the virtio rows belong to the virtio issue; the device-specific rows that
//! only need the engine's attributes (HPET, AER, OpenPIC, ...) are in
//! `bad_input/cve_cases.rs` and `bad_input/validate.rs`.
//!
//! | §9 row | test(s) | also covered by |
//! |---|---|---|
//! | truncated stream at every offset | `generic_truncated_stream_at_every_offset` | savevm_stream `every_truncation_is_an_error`, bad_input/truncation.rs |
//! | wrong magic | `generic_bad_magic` | savevm_stream, error_kinds `stream_kinds` |
//! | version 2 / version 4 | `generic_stream_version_2_obsolete`, `generic_stream_version_4_unsupported` | savevm_stream |
//! | missing 0x07 configuration | `generic_configuration_missing` | savevm_stream |
//! | machine type mismatch | `generic_machine_type_mismatch` | savevm_stream, error_kinds |
//! | unknown capability string | `generic_unknown_capability` | config.rs unit test |
//! | caps_count larger than the list | `generic_caps_count_beyond_list`, `generic_caps_count_at_max` | — |
//! | section types 0x05/0x06/0x09..0x7d/0x7f..0xff | `generic_unknown_section_types` | savevm_stream (6 of them) |
//! | zero-length idstr | `generic_zero_length_idstr` | savevm_stream |
//! | unknown idstr | `generic_unknown_idstr` | savevm_stream, error_kinds |
//! | known idstr, wrong instance | `generic_wrong_instance` | savevm_stream |
//! | version above registered / below minimum | `generic_version_above_registered`, `generic_version_below_minimum` | savevm_stream, bad_input/versions_subsections.rs |
//! | footer missing / wrong marker / wrong id | `generic_footer_missing`, `generic_footer_wrong_marker`, `generic_footer_wrong_id` | savevm_stream |
//! | PART/END for a section never STARTed | `generic_part_never_started`, `generic_end_never_started` | savevm_stream (PART) |
//! | (START for a FULL-only device) | `generic_start_for_non_iterative` | — |
//! | subsection: unknown name under our prefix | `generic_subsection_unknown_name` | bad_input/versions_subsections.rs |
//! | subsection: foreign prefix stops parsing | `generic_subsection_foreign_prefix` | — |
//! | subsection: version > 255 (truncated to u8) | `generic_subsection_version_above_255` | bad_input/versions_subsections.rs |
//! | subsection: truncated name | `generic_subsection_truncated_name` | bad_input/truncation.rs |
//! | VARRAY count at max value | `generic_varray_count_at_max` | bad_input/counts.rs |
//! | VBUFFER count at max value | `generic_vbuffer_count_at_max` | bad_input/counts.rs |
//! | VALIDATE false | `generic_validate_false` | bad_input/validate.rs |
//! | *_EQUAL mismatch | `generic_equal_mismatch` | bad_input/values.rs |
//! | "int32 le" above current / negative | `generic_int32_le_out_of_range` | bad_input/values.rs |
//! | bool byte 0x02 | `generic_bool_0x02` | bad_input/values.rs |
//! | NULL-pointer marker ≠ 0x30 | `generic_null_pointer_marker` | bad_input/values.rs |
//! | QTAILQ/QLIST with no terminating 0 | `generic_list_without_terminator` (+ `generic_list_bad_marker`, `generic_list_too_long`) | bad_input/values.rs |
//! | GTREE with more/fewer nodes | none: the engine has no GTREE kind (no field can be declared as one) | — |
//! | RAM rows | vmstate-devices/tests/cve_catalogue.rs | |
//! | commands: cmd 0 / ≥ MAX | `generic_command_zero`, `generic_command_at_or_above_max` | command.rs unit test |
//! | commands: wrong fixed lengths | `generic_command_wrong_fixed_length` | command.rs unit test |
//! | commands: PING without return path | `generic_ping_without_return_path` | — |
//! | commands: DISCARD outside postcopy | `generic_discard_outside_postcopy` | postcopy.rs |
//! | commands: DISCARD bad version / NUL / len % 16 | `generic_discard_malformed` | command.rs unit test |
//! | commands: PACKAGED length beyond the stream | `generic_packaged_beyond_stream`, `generic_packaged_above_limit` | savevm_stream, hostile_peer |
//! | commands: nested PACKAGED | `generic_packaged_nested` | — |
//! | commands: RECV_BITMAP len ≠ n+1 | `generic_recv_bitmap_bad_length` | command.rs unit test |
//! | commands: SWITCHOVER_START into 7.2 | `generic_switchover_start_into_7_2` | command.rs unit test |
//!
//! Rows whose count is a peer-claimed size also assert that the failed load
//! allocated next to nothing (the counting allocator of `common::alloc`).

mod common;

#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

use vmstate_runtime::error::{ConfigMismatch, PostcopyError, ReturnPathMissing};
use vmstate_runtime::migration::{run_incoming, Incoming, MigrationUri, StatsHandle};
use vmstate_runtime::savevm::format::MigCmd;
use vmstate_runtime::savevm::{Command, Configuration, VmDescPolicy};
use vmstate_runtime::wire::Writer;
use vmstate_runtime::{from_bytes, Error, ErrorKind, VmState};

use common::alloc::measure;
use common::bytes::{cat, sub_header};
use common::kinds::kind;
use common::stream::{load, reference, reference_with, Reference, HEADER_LEN, MACHINE};

/// A check of an error's kind (made by [`kind!`]).
type KindCheck = fn(&ErrorKind) -> bool;

/// Asserts that `r` failed with a kind `check` accepts, at a known offset.
#[track_caller]
fn refused(r: vmstate_runtime::Result<()>, check: KindCheck) -> Error {
    let e = r.expect_err("the load must fail");
    assert!(check(e.kind()), "unexpected error: {e}");
    assert!(e.offset().is_some(), "no offset in: {e}");
    e
}

/// One stream row: the reference stream broken by `make`, refused with `check`.
macro_rules! stream_rows {
    ($($(#[$doc:meta])* $name:ident: |$s:ident| $bytes:expr => $check:expr;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            let $s: Reference = reference();
            refused(load(&$bytes), $check);
        }
    )*};
}

/// The first START record (the iterative "pages" section).
fn start(s: &Reference) -> usize {
    s.record(0x01, Some("pages")).at
}

stream_rows! {
    /// "QEVU" instead of "QEVM".
    generic_bad_magic: |s| s.with_byte(3, b'U') => kind! { ErrorKind::BadMagic { magic: 0x5145_5655 } };
    /// Stream version 2 (the obsolete one).
    generic_stream_version_2_obsolete: |s| s.with_byte(7, 2)
        => kind! { ErrorKind::UnsupportedStreamVersion { version: 2 } };
    /// Stream version 4.
    generic_stream_version_4_unsupported: |s| s.with_byte(7, 4)
        => kind! { ErrorKind::UnsupportedStreamVersion { version: 4 } };
    /// No configuration record where the destination expects one: the first
    /// section header comes instead.
    generic_configuration_missing: |s| s.splice(HEADER_LEN..start(&s), &[])
        => kind! { ErrorKind::MissingConfiguration { found: 0x01, .. } };
    /// A section header whose idstr length is 0.
    generic_zero_length_idstr: |s| {
        let at = s.uart().idstr_at.unwrap();
        s.splice(at..at + 5, &[0])
    } => kind! { ErrorKind::EmptyIdstr { .. } };
    /// An idstr nobody registered.
    generic_unknown_idstr: |s| s.with_byte(s.uart().idstr_at.unwrap() + 1, b'x')
        => kind! { ErrorKind::UnknownSection { idstr, instance_id: 0 } if idstr == "xart" };
    /// A registered idstr with an instance id nobody registered.
    generic_wrong_instance: |s| s.with_byte(s.uart().instance_at() + 3, 1)
        => kind! { ErrorKind::UnknownSection { idstr, instance_id: 1 } if idstr == "uart" };
    /// A section version above the registered one.
    generic_version_above_registered: |s| s.with_byte(s.uart().version_at() + 3, 3)
        => kind! { ErrorKind::VersionTooNew { version: 3, max: 2 } };
    /// A section version below the device's minimum.
    generic_version_below_minimum: |s| s.with_byte(s.uart().version_at() + 3, 0)
        => kind! { ErrorKind::VersionTooOld { version: 0, min: 1 } };
    /// The footer left out: the next section's header comes where it should be.
    generic_footer_missing: |s| {
        let f = s.uart().footer;
        s.splice(f..f + 5, &[])
    } => kind! { ErrorKind::MissingFooter { found: 0x04 } };
    /// A footer with another marker byte.
    generic_footer_wrong_marker: |s| s.with_byte(s.uart().footer, 0x7f)
        => kind! { ErrorKind::MissingFooter { found: 0x7f } };
    /// A footer naming another section id.
    generic_footer_wrong_id: |s| {
        let u = s.uart();
        s.with_byte(u.footer + 4, (u.section_id as u8) ^ 0x40)
    } => kind! { ErrorKind::FooterMismatch { .. } };
    /// A PART for a section id no START opened.
    generic_part_never_started: |s| {
        let p = s.record(0x02, None);
        s.splice(p.at + 1..p.at + 5, &77u32.to_be_bytes())
    } => kind! { ErrorKind::UnknownSectionId { section_id: 77 } };
    /// An END for a section id no START opened.
    generic_end_never_started: |s| {
        let e = s.record(0x03, None);
        s.splice(e.at + 1..e.at + 5, &77u32.to_be_bytes())
    } => kind! { ErrorKind::UnknownSectionId { section_id: 77 } };
    /// A START for a device that only ever writes FULL sections.
    generic_start_for_non_iterative: |s| s.with_byte(s.uart().at, 0x01)
        => kind! { ErrorKind::StartForNonIterative };
}

/// Every cut of the reference stream fails as truncated, at an offset.
#[test]
fn generic_truncated_stream_at_every_offset() {
    let s = reference();
    load(&s.bytes).expect("the reference stream loads");
    for cut in 0..s.bytes.len() {
        let e = load(&s.bytes[..cut]).expect_err("a cut stream must fail");
        assert!(
            matches!(e.kind(), ErrorKind::Truncated { .. }),
            "cut at {cut}: {e}"
        );
        assert!(
            e.offset().is_some_and(|o| o <= cut as u64),
            "cut {cut}: {e}"
        );
    }
}

/// Every top-level record type QEMU does not know, where a section header
/// should be: 0x05 (subsection), 0x06 (vmdesc), 0x09..=0x7d, 0x7f..=0xff.
#[test]
fn generic_unknown_section_types() {
    let s = reference();
    let at = s.uart().at;
    let types = [0x05u8, 0x06]
        .into_iter()
        .chain(0x09..=0x7d)
        .chain(0x7f..=0xff);
    let mut n = 0;
    for ty in types {
        let e = refused(
            load(&s.with_byte(at, ty)),
            kind! { ErrorKind::UnknownRecordType { .. } },
        );
        assert!(
            matches!(e.kind(), ErrorKind::UnknownRecordType { ty: t } if *t == ty),
            "{e}"
        );
        assert_eq!(e.offset(), Some(at as u64), "{e}");
        n += 1;
    }
    assert_eq!(n, 2 + 0x75 + 0x81);
}

/// The configuration record names another machine type.
#[test]
fn generic_machine_type_mismatch() {
    let s = reference_with(&Configuration::new("pc-q35-7.2"));
    refused(
        load(&s.bytes),
        kind! { ErrorKind::ConfigurationMismatch(ConfigMismatch::MachineType { stream, .. }) if stream == "pc-q35-7.2" },
    );
}

/// A configuration with these capabilities.
fn with_caps(caps: &[&str]) -> Configuration {
    let mut c = Configuration::new(MACHINE);
    c.set_capabilities(caps);
    c
}

/// The capabilities subsection names a capability that is not a validated one.
#[test]
fn generic_unknown_capability() {
    let s = reference_with(&with_caps(&["x-bogus"]));
    refused(
        load(&s.bytes),
        kind! { ErrorKind::ConfigurationMismatch(ConfigMismatch::UnknownCapability { name }) if name == "x-bogus" },
    );
}

/// Offset of the be32 caps_count in a stream whose configuration has a
/// capabilities subsection.
fn caps_count_at(s: &Reference) -> usize {
    let name = b"configuration/capabilities";
    s.bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 4
}

/// caps_count says 2 but one name follows: the second "name" is read from the
/// next record's bytes and is no validated capability. QEMU fails the same way.
#[test]
fn generic_caps_count_beyond_list() {
    let s = reference_with(&with_caps(&["x-ignore-shared"]));
    let at = caps_count_at(&s);
    assert_eq!(s.bytes[at..at + 4], 1u32.to_be_bytes());
    let broken = s.splice(at..at + 4, &2u32.to_be_bytes());
    let e = refused(
        load(&broken),
        kind! { ErrorKind::ConfigurationMismatch(ConfigMismatch::UnknownCapability { .. }) },
    );
    assert!(e.to_string().contains("unknown capability"), "{e}");
}

/// caps_count at its maximum values: refused by the count bound (64) before
/// any name is read or any room is made for one.
#[test]
fn generic_caps_count_at_max() {
    let s = reference_with(&with_caps(&["x-ignore-shared"]));
    let at = caps_count_at(&s);
    for count in [65u32, 0x8000_0000, u32::MAX] {
        let broken = s.splice(at..at + 4, &count.to_be_bytes());
        let (r, seen) = measure(|| load(&broken));
        let e = refused(r, kind! { ErrorKind::CountOutOfRange { max: 64, .. } });
        assert_eq!(e.path_string(), "configuration/capabilities.capabilities");
        assert!(seen.largest < 64 << 10, "{count:#x}: {seen:?}");
    }
}

// ---- field rows: one body, one broken field ----

/// Loads `bytes` as a `T` at `version`: must fail with `check`, at `path` and
/// `offset`, allocating less than 64 KiB at once.
#[track_caller]
fn field_refused<T: VmState + Default + std::fmt::Debug>(
    bytes: &[u8],
    version: u32,
    path: &str,
    offset: u64,
    check: KindCheck,
) -> Error {
    let (r, seen) = measure(|| from_bytes::<T>(bytes, version));
    let e = r.expect_err("the load must fail");
    assert!(check(e.kind()), "{bytes:02x?}: {e}");
    assert_eq!(e.path_string(), path, "{e}");
    assert_eq!(e.offset(), Some(offset), "{e}");
    assert!(seen.largest < 64 << 10, "{e}: {seen:?}");
    e
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "kbd/ext", version = 2, minimum_version = 2)]
struct KbdExt {
    mode: u8,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "kbd", version = 1)]
struct Kbd {
    status: u8,
    #[vmstate(subsection())]
    ext: KbdExt,
}

/// A subsection named under our prefix that we do not have.
#[test]
fn generic_subsection_unknown_name() {
    let b = cat(&[&[0], &sub_header("kbd/bogus", 1), &[1]]);
    field_refused::<Kbd>(
        &b,
        1,
        "kbd",
        1,
        kind! { ErrorKind::UnknownSubsection { name } if name == "kbd/bogus" },
    );
}

/// A subsection with another device's prefix is not ours: parsing stops
/// before it and leaves its bytes (in a stream the section footer check then
/// fails on them, as in QEMU).
#[test]
fn generic_subsection_foreign_prefix() {
    let foreign = cat(&[&sub_header("mouse/ext", 2), &[7]]);
    let b = cat(&[&[0], &foreign]);
    let e = field_refused::<Kbd>(&b, 1, "kbd", 1, kind! { ErrorKind::TrailingBytes(_) });
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(n) if *n == foreign.len()));
}

/// A subsection version above 255: QEMU reads it into a u8, so 0x0102 is
/// version 2 (loads) and 0x0103 is version 3 (too new).
#[test]
fn generic_subsection_version_above_255() {
    let ok = cat(&[&[0], &sub_header("kbd/ext", 0x0102), &[5]]);
    assert_eq!(from_bytes::<Kbd>(&ok, 1).unwrap().ext.mode, 5);
    let hdr = sub_header("kbd/ext", 0x0103);
    let b = cat(&[&[0], &hdr, &[5]]);
    field_refused::<Kbd>(
        &b,
        1,
        "kbd/ext",
        1 + hdr.len() as u64,
        kind! { ErrorKind::VersionTooNew { version: 3, max: 2 } },
    );
}

/// A subsection header whose name runs past the end of the input: as in
/// QEMU (which peeks the name and finds it short), it is no subsection, and
/// its bytes are left over (in a stream, where the footer should be).
#[test]
fn generic_subsection_truncated_name() {
    let b = [0, 0x05, 20, b'k', b'b', b'd', b'/'];
    field_refused::<Kbd>(&b, 1, "kbd", 1, kind! { ErrorKind::TrailingBytes(6) });
    let s = reference();
    let f = s.uart().footer;
    refused(
        load(&s.insert(f, &b[1..])),
        kind! { ErrorKind::MissingFooter { found: 0x05 } },
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "counts", version = 1)]
struct Counts {
    n8: u8,
    #[vmstate(varray(len = n8))]
    fixed: [u16; 4],
    n32: u32,
    #[vmstate(varray(len = n32), max = 100)]
    vec32: Vec<u32>,
    ni: i32,
    #[vmstate(varray(len = ni), max = 8)]
    veci: Vec<u64>,
}

/// VARRAY counts at the maximum of their type (and negative for a signed
/// count): refused before any element is read or allocated.
#[test]
fn generic_varray_count_at_max() {
    let cases: &[(Vec<u8>, &str, u64, KindCheck)] = &[
        (
            vec![0xff],
            "counts.fixed",
            1,
            kind! { ErrorKind::CountOutOfRange { count: 255, max: 4 } },
        ),
        (
            cat(&[&[0], &u32::MAX.to_be_bytes()]),
            "counts.vec32",
            5,
            kind! { ErrorKind::CountOutOfRange { count: 0xffff_ffff, max: 100 } },
        ),
        (
            cat(&[&[0], &[0; 4], &i32::MAX.to_be_bytes()]),
            "counts.veci",
            9,
            kind! { ErrorKind::CountOutOfRange { count: 0x7fff_ffff, max: 8 } },
        ),
        (
            cat(&[&[0], &[0; 4], &(-1i32).to_be_bytes()]),
            "counts.veci",
            9,
            kind! { ErrorKind::CountOutOfRange { count: -1, max: 8 } },
        ),
        (
            cat(&[&[0], &[0; 4], &i32::MIN.to_be_bytes()]),
            "counts.veci",
            9,
            kind! { ErrorKind::CountOutOfRange { count: -0x8000_0000, max: 8 } },
        ),
    ];
    for (b, path, offset, check) in cases {
        field_refused::<Counts>(b, 1, path, *offset, *check);
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "vbuf", version = 1)]
struct VBuf {
    len: u32,
    #[vmstate(vbuffer(len = len), max = 4096)]
    data: Vec<u8>,
    slen: i32,
    #[vmstate(vbuffer(len = slen), max = 16)]
    sdata: Vec<u8>,
}

/// VBUFFER sizes at the maximum of their type, and negative: refused before
/// a buffer of that size exists (CVE-2014-0182's config_len is this shape).
#[test]
fn generic_vbuffer_count_at_max() {
    for (b, path, offset) in [
        (u32::MAX.to_be_bytes().to_vec(), "vbuf.data", 4),
        (0x8000_0000u32.to_be_bytes().to_vec(), "vbuf.data", 4),
        (cat(&[&[0; 4], &i32::MAX.to_be_bytes()]), "vbuf.sdata", 8),
        (cat(&[&[0; 4], &(-1i32).to_be_bytes()]), "vbuf.sdata", 8),
    ] {
        field_refused::<VBuf>(
            &b,
            1,
            path,
            offset,
            kind! { ErrorKind::CountOutOfRange { .. } },
        );
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "fifo", version = 1)]
struct Fifo {
    #[vmstate(validate = Fifo::start_in_range)]
    rx_start: u32,
    data: [u8; 16],
}

impl Fifo {
    fn start_in_range(&self, _version_id: u32) -> bool {
        self.rx_start < 16
    }
}

/// A VALIDATE check that returns false.
#[test]
fn generic_validate_false() {
    let b = cat(&[&16u32.to_be_bytes(), &[0; 16]]);
    field_refused::<Fifo>(
        &b,
        1,
        "fifo.rx_start",
        4,
        kind! { ErrorKind::ValidationFailed { check: "Fifo::start_in_range" } },
    );
}

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "ahci", version = 1)]
struct Equal {
    #[vmstate(equal)]
    ports: i32,
    #[vmstate(positive_le)]
    len: i32,
}

impl Default for Equal {
    fn default() -> Self {
        Equal { ports: 6, len: 10 }
    }
}

/// An `_EQUAL` field whose value differs from the destination's.
#[test]
fn generic_equal_mismatch() {
    let b = cat(&[&33i32.to_be_bytes(), &[0; 4]]);
    field_refused::<Equal>(
        &b,
        1,
        "ahci.ports",
        0,
        kind! { ErrorKind::NotEqual { expected: 6, found: 33 } },
    );
}

/// An "int32 le" (VMSTATE_INT32_POSITIVE_LE) above the current value, or negative.
#[test]
fn generic_int32_le_out_of_range() {
    for (v, found) in [(11i32, 11), (-1, -1), (i32::MIN, i32::MIN)] {
        let b = cat(&[&6i32.to_be_bytes(), &v.to_be_bytes()]);
        let e = field_refused::<Equal>(
            &b,
            1,
            "ahci.len",
            4,
            kind! { ErrorKind::NotPositiveLe { limit: 10, .. } },
        );
        assert!(matches!(e.kind(), ErrorKind::NotPositiveLe { found: f, .. } if *f == found));
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "flags", version = 1)]
struct Flags {
    a: bool,
    b: bool,
}

/// A bool byte 0x02.
#[test]
fn generic_bool_0x02() {
    field_refused::<Flags>(
        &[1, 2],
        1,
        "flags.b",
        1,
        kind! { ErrorKind::InvalidBool(2) },
    );
}

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "ptrs", version = 1)]
struct Ptrs {
    ptrs: [Option<Box<u16>>; 2],
}

impl Default for Ptrs {
    fn default() -> Self {
        Ptrs {
            ptrs: [Some(Box::new(0)), None],
        }
    }
}

/// A NULL pointer's placeholder byte other than 0x30.
#[test]
fn generic_null_pointer_marker() {
    assert!(from_bytes::<Ptrs>(&[0, 1, 0x30], 1).is_ok());
    field_refused::<Ptrs>(
        &[0, 1, 0x31],
        1,
        "ptrs.ptrs[1]",
        2,
        kind! { ErrorKind::BadNullMarker(0x31) },
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "elem", version = 1)]
struct Elem {
    v: u32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "q", version = 1)]
struct Queue {
    #[vmstate(list, max = 2)]
    l: Vec<Elem>,
}

/// A QTAILQ/QLIST with no terminating 0: runs to the end of the input.
#[test]
fn generic_list_without_terminator() {
    field_refused::<Queue>(
        &[1, 0, 0, 0, 1, 1, 0, 0, 0, 2],
        1,
        "q.l",
        10,
        kind! { ErrorKind::Truncated { needed: 1, available: 0 } },
    );
}

/// A list element marker other than 0x00/0x01.
#[test]
fn generic_list_bad_marker() {
    field_refused::<Queue>(&[2], 1, "q.l", 0, kind! { ErrorKind::BadListMarker(2) });
}

/// A list longer than its bound (elements are read, and kept, one at a time).
#[test]
fn generic_list_too_long() {
    field_refused::<Queue>(
        &[1, 0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 0, 0, 0, 3, 0],
        1,
        "q.l",
        10,
        kind! { ErrorKind::ListTooLong { max: 2 } },
    );
}

// ---- commands ----

/// The reference stream with a raw command record (`0x08, be16 cmd, be16
/// len, payload`) before the uart's section.
fn with_command(s: &Reference, cmd: u16, payload: &[u8]) -> Vec<u8> {
    let mut rec = vec![0x08];
    rec.extend_from_slice(&cmd.to_be_bytes());
    rec.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    rec.extend_from_slice(payload);
    s.insert(s.uart().at, &rec)
}

/// Command 0 (MIG_CMD_INVALID).
#[test]
fn generic_command_zero() {
    let s = reference();
    refused(
        load(&with_command(&s, 0, &[])),
        kind! { ErrorKind::UnknownCommand { cmd: 0, len: 0 } },
    );
}

/// Commands at and above 7.2's MIG_CMD_MAX (11: SWITCHOVER_START is 10.x only).
#[test]
fn generic_command_at_or_above_max() {
    let s = reference();
    for cmd in [11u16, 12, 0x100, u16::MAX] {
        let e = refused(
            load(&with_command(&s, cmd, &[0; 4])),
            kind! { ErrorKind::UnknownCommand { len: 4, .. } },
        );
        assert!(matches!(e.kind(), ErrorKind::UnknownCommand { cmd: c, .. } if *c == cmd));
    }
}

/// SWITCHOVER_START sent to a 7.2 destination ("MIG_CMD 0xb unknown").
#[test]
fn generic_switchover_start_into_7_2() {
    let s = reference();
    let mut w = Writer::new(Vec::new());
    Command::SwitchoverStart.write(&mut w).unwrap();
    let bytes = s.insert(s.uart().at, &w.into_inner());
    refused(
        load(&bytes),
        kind! { ErrorKind::UnknownCommand { cmd: 11, len: 0 } },
    );
}

/// Commands with a fixed payload length, given another one.
#[test]
fn generic_command_wrong_fixed_length() {
    let s = reference();
    let cases: &[(MigCmd, usize, usize)] = &[
        (MigCmd::OpenReturnPath, 1, 0),
        (MigCmd::Ping, 3, 4),
        (MigCmd::Ping, 5, 4),
        (MigCmd::PostcopyListen, 2, 0),
        (MigCmd::PostcopyRun, 8, 0),
        (MigCmd::Packaged, 2, 4),
        (MigCmd::PostcopyResume, 1, 0),
    ];
    for &(cmd, len, expected) in cases {
        let e = refused(
            load(&with_command(&s, cmd as u16, &vec![0; len])),
            kind! { ErrorKind::BadCommandLength { .. } },
        );
        assert!(
            matches!(e.kind(), ErrorKind::BadCommandLength { name, len: l, expected: x }
                if *name == cmd.name() && *l == len && *x == expected),
            "{e}"
        );
    }
    // POSTCOPY_ADVISE is 0 or 16 bytes.
    refused(
        load(&with_command(&s, MigCmd::PostcopyAdvise as u16, &[0; 8])),
        kind! { ErrorKind::MalformedCommand { name: "POSTCOPY_ADVISE", .. } },
    );
}

/// POSTCOPY_RAM_DISCARD payloads: an unknown version, no NUL after the name,
/// ranges that are not whole 16-byte pairs, a name past the payload.
#[test]
fn generic_discard_malformed() {
    let s = reference();
    let discard = |version: u8, nul: u8, ranges: usize| {
        let mut p = vec![version, 2, b'a', b'b', nul];
        p.extend(std::iter::repeat_n(0, ranges));
        p
    };
    for (payload, reason) in [
        (discard(1, 0, 16), "unknown version 1"),
        (discard(0, 9, 16), "expected NUL"),
        (discard(0, 0, 17), "not a multiple of 16"),
        (discard(0, 0, 0), "too short"),
        (
            vec![0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "overruns",
        ),
    ] {
        let e = refused(
            load(&with_command(
                &s,
                MigCmd::PostcopyRamDiscard as u16,
                &payload,
            )),
            kind! { ErrorKind::MalformedCommand { name: "POSTCOPY_RAM_DISCARD", .. } },
        );
        assert!(e.to_string().contains(reason), "{reason}: {e}");
    }
}

/// RECV_BITMAP whose length is not the name's length + 1.
#[test]
fn generic_recv_bitmap_bad_length() {
    let s = reference();
    for payload in [&[5u8, b'a', b'b'][..], &[], &[1, b'a', b'b']] {
        refused(
            load(&with_command(&s, MigCmd::RecvBitmap as u16, payload)),
            kind! { ErrorKind::MalformedCommand { name: "RECV_BITMAP", .. } },
        );
    }
}

/// A PACKAGED command claiming more bytes than the stream has: truncated,
/// and no buffer of the claimed size was made.
#[test]
fn generic_packaged_beyond_stream() {
    let s = reference();
    let mut b = s.bytes[..s.uart().at].to_vec();
    b.extend_from_slice(&[0x08, 0, 7, 0, 4]);
    b.extend_from_slice(&(16u32 << 20).to_be_bytes());
    b.extend_from_slice(&[0x04; 100]);
    let (r, seen) = measure(|| load(&b));
    refused(r, kind! { ErrorKind::Truncated { .. } });
    assert!(seen.largest < 1 << 20, "{seen:?}");
}

/// A PACKAGED length above the limit is refused before anything is read.
#[test]
fn generic_packaged_above_limit() {
    let s = reference();
    let e = refused(
        load(&with_command(
            &s,
            MigCmd::Packaged as u16,
            &u32::MAX.to_be_bytes(),
        )),
        kind! { ErrorKind::MalformedCommand { name: "PACKAGED", .. } },
    );
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
}

/// A PACKAGED inside a package.
#[test]
fn generic_packaged_nested() {
    let s = reference();
    let inner = [0x08, 0, 7, 0, 4, 0, 0, 0, 0];
    let mut outer = vec![0x08, 0, 7, 0, 4];
    outer.extend_from_slice(&(inner.len() as u32).to_be_bytes());
    outer.extend_from_slice(&inner);
    let e = refused(
        load(&s.insert(s.uart().at, &outer)),
        kind! { ErrorKind::MalformedCommand { name: "PACKAGED", .. } },
    );
    assert!(e.to_string().contains("nested package"), "{e}");
}

/// Runs the real destination driver over `bytes` in a file (a one-way
/// transport: no return path can open) and gives its error.
fn incoming_from_file(tag: &str, bytes: &[u8]) -> Error {
    let path = std::env::temp_dir().join(format!(
        "vmstate-cve-catalogue-{tag}-{}.mig",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let incoming = Incoming::listen(&MigrationUri::File(path.clone())).unwrap();
    let mut dst = common::stream::destination();
    let opts = common::stream::load_options().with_vmdesc(VmDescPolicy::Suppressed);
    let r = run_incoming(incoming, &mut dst.reg, opts, &StatsHandle::default());
    let _ = std::fs::remove_file(&path);
    r.expect_err("the incoming migration must fail")
}

/// A PING with no return path open: the destination cannot answer, and fails.
#[test]
fn generic_ping_without_return_path() {
    let s = reference();
    let mut w = Writer::new(Vec::new());
    Command::Ping(7).write(&mut w).unwrap();
    let e = incoming_from_file("ping", &s.insert(s.uart().at, &w.into_inner()));
    assert!(
        matches!(
            e.kind(),
            ErrorKind::NoReturnPath(ReturnPathMissing::Ping { value: 7 })
        ),
        "{e}"
    );
    assert!(e.offset().is_some(), "{e}");
}

/// A POSTCOPY_RAM_DISCARD with no POSTCOPY_ADVISE before it.
#[test]
fn generic_discard_outside_postcopy() {
    let s = reference();
    let mut w = Writer::new(Vec::new());
    Command::PostcopyRamDiscard {
        block: "pages".into(),
        ranges: vec![(0, 4)],
    }
    .write(&mut w)
    .unwrap();
    let e = incoming_from_file("discard", &s.insert(s.uart().at, &w.into_inner()));
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Postcopy(PostcopyError::BadState {
                cmd: MigCmd::PostcopyRamDiscard,
                ..
            })
        ),
        "{e}"
    );
}
