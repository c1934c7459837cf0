//! Golden expansions, in the manner of zerocopy's `output_tests`: a handful of
//! representative inputs, each with its pretty-printed expansion checked in under
//! `expanded/`, so a reviewer sees exactly what a change does to the generated code.
//! (The files are Rust, named `.expanded` so tools that scan the tree's sources do
//! not take generated code for hand-written code.)
//!
//! A test fails on any difference. After an intended change, regenerate with
//! `VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests` and review
//! the diff of `vmstate-derive/src/expand/output_tests/expanded/`.

use std::path::PathBuf;

use quote::quote;

/// Expands `input` and compares it with `expanded/<name>.expanded`.
fn check(name: &str, input: proc_macro2::TokenStream) {
    let input: syn::DeriveInput = syn::parse2(input).expect("test input is a derive input");
    let fields = match &input.data {
        syn::Data::Struct(s) => s.fields.len(),
        syn::Data::Enum(e) => e.variants.len(),
        syn::Data::Union(_) => 0,
    };
    let output = crate::expand_derive(&input);
    let file = syn::parse2::<syn::File>(output).expect("the expansion parses as items");
    let actual = format!(
        "// Expansion of the `{name}` case in vmstate-derive/src/expand/output_tests/mod.rs\n\
         // ({fields} fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests\n\n{}",
        prettyplease::unparse(&file)
    );
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/expand/output_tests/expanded")
        .join(format!("{name}.expanded"));
    if std::env::var_os("VMSTATE_EXPAND_OVERWRITE").is_some() {
        std::fs::write(&path, &actual).expect("write the expected expansion");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "the expansion of `{name}` differs from {} (first difference at line {}).\n\
             If the change is intended, regenerate with\n\
             \tVMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests\n\
             and review the diff.\n\n--- actual ---\n{actual}",
            path.display(),
            first + 1
        );
    }
}

/// A run of plain scalars and arrays (one room check on save, one slice on load),
/// and a field outside the run (`since`).
#[test]
fn plain_run() {
    check(
        "plain_run",
        quote! {
            #[vmstate(name = "timer", version = 2, minimum_version = 1)]
            struct Timer {
                count: u32,
                reload: u32,
                mode: u8,
                armed: bool,
                regs: [u16; 4],
                #[vmstate(since = 2)]
                expire: u64,
            }
        },
    );
}

/// A variable array with its count field and bound, a variable buffer, a list.
#[test]
fn varray() {
    check(
        "varray",
        quote! {
            #[vmstate(name = "fifo", version = 1)]
            struct Fifo {
                len: u32,
                #[vmstate(varray(len = len), max = 256)]
                data: Vec<u8>,
                used: u8,
                #[vmstate(varray(len = used))]
                slots: [u16; 8],
                #[vmstate(list, max = 16)]
                queue: Vec<Entry>,
            }
        },
    );
}

/// Subsections, one with a `needed` test, plus hooks and a `test`ed field.
#[test]
fn subsections() {
    check(
        "subsections",
        quote! {
            #[vmstate(name = "dev", version = 3, pre_save = Self::pre_save, post_load = Self::post_load)]
            struct Dev {
                status: u8,
                #[vmstate(test = Self::has_mode)]
                mode: u16,
                #[vmstate(subsection(needed = Self::extra_needed))]
                extra: Extra,
                #[vmstate(subsection)]
                always: Always,
                #[vmstate(skip)]
                cache: u64,
            }
        },
    );
}

/// A `with_tmp` view, an `equal` and a `positive_le` field, a timer, padding.
#[test]
fn with_tmp() {
    check(
        "with_tmp",
        quote! {
            #[vmstate(name = "clock")]
            struct Clock {
                #[vmstate(equal)]
                magic: u32,
                #[vmstate(positive_le)]
                level: i32,
                #[vmstate(with_tmp)]
                ticks: WithTmp<Ticks>,
                #[vmstate(timer)]
                deadline: Option<u64>,
                #[vmstate(unused = 4)]
                pad: (),
            }
        },
    );
}

/// A unit-variant enum encoded as its `#[repr]` discriminant.
#[test]
fn enum_repr() {
    check(
        "enum_repr",
        quote! {
            #[repr(u8)]
            enum Mode {
                Off = 0,
                On = 1,
                Auto = 7,
            }
        },
    );
}

/// A generic struct: the impls carry the user's parameters and bounds.
#[test]
fn generics() {
    check(
        "generics",
        quote! {
            #[vmstate(name = "regs", version = 1)]
            struct Regs<T: VmStateField, const N: usize> {
                count: u8,
                regs: [T; N],
            }
        },
    );
}

/// `crate = "..."`: every path goes through the named re-export of the runtime.
#[test]
fn crate_path() {
    check(
        "crate_path",
        quote! {
            #[vmstate(crate = "my_vmm::migration", name = "uart", version = 1)]
            struct Uart {
                lcr: u8,
            }
        },
    );
}

/// The struct `name` as it is declared in `file` (relative to the workspace root),
/// so the golden expansion follows the real code instead of a copy of it.
fn declared(file: &str, name: &str) -> proc_macro2::TokenStream {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read the file declaring the struct");
    let parsed = syn::parse_file(&text).expect("the file parses");
    parsed
        .items
        .into_iter()
        .find_map(|item| match item {
            syn::Item::Struct(s) if s.ident == name => Some(quote!(#s)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no struct `{name}` in {file}"))
}

/// The 40-field device of the `device_codec` benchmark (the lines-per-field figure).
#[test]
fn device_codec() {
    check(
        "device_codec",
        declared("vmstate-runtime/benches/device_codec.rs", "Device"),
    );
}

/// The i8042 controller body of the pckbd model (hooks, subsections, skips).
#[test]
fn pckbd_controller() {
    check(
        "pckbd_controller",
        declared("vmstate-devices/src/pckbd/controller.rs", "KbdState"),
    );
}

/// The PS/2 mouse of the pckbd model (a nested struct, then a plain run).
#[test]
fn pckbd_mouse() {
    check(
        "pckbd_mouse",
        declared("vmstate-devices/src/pckbd/ps2/mouse.rs", "Ps2Mouse"),
    );
}

/// A derive that fails: the errors plus stand-in impls (no cascade at use sites).
#[test]
fn fallback() {
    check(
        "fallback",
        quote! {
            #[vmstate(name = "bad", versoin = 1)]
            struct Bad {
                a: u8,
            }
        },
    );
}
