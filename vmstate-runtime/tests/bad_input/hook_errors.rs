//! Hook errors

use super::counts::Counts;
use super::*;

#[derive(Debug)]
struct DeviceError {
    code: u32,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device error {}", self.code)
    }
}

impl std::error::Error for DeviceError {}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, pre_load = StrHook::pre_load, pre_save = StrHook::pre_save)]
struct StrHook {
    a: u8,
}

impl StrHook {
    fn pre_load(&mut self) -> Result<(), &'static str> {
        Err("pre_load says no")
    }
    fn pre_save(&self) -> Result<(), String> {
        Err(format!("pre_save says no to {}", self.a))
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, post_load = CustomHook::post_load, post_save = CustomHook::post_save)]
struct CustomHook {
    a: u8,
    b: u16,
}

impl CustomHook {
    fn post_load(&mut self, version_id: u32) -> Result<(), DeviceError> {
        Err(DeviceError {
            code: version_id * 100 + u32::from(self.a),
        })
    }
    fn post_save(&self) -> Result<(), DeviceError> {
        Err(DeviceError { code: 7 })
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1, post_load = OursHook::post_load)]
struct OursHook {
    a: u8,
}

impl OursHook {
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        match self.a {
            0 => Err(Error::invalid("a must not be zero")),
            1 => Err(Error::at(ErrorKind::InvalidBool(9), 0)),
            _ => Err(Error::from(ErrorKind::NotPositiveLe {
                found: self.a as i32,
                limit: 1,
            })),
        }
    }
}

#[test]
fn hook_error_from_str_and_string() {
    let e = load_err::<StrHook>(&[5], 1, "dev", 0);
    let ErrorKind::Hook { hook, source } = e.kind() else {
        panic!("{e}")
    };
    assert_eq!(*hook, "pre_load");
    assert_eq!(source.to_string(), "pre_load says no");
    assert_eq!(
        e.to_string(),
        "dev: pre_load hook failed: pre_load says no (at byte offset 0)"
    );

    let e = to_bytes(&StrHook { a: 4 }).unwrap_err();
    assert_kind!(
        e,
        ErrorKind::Hook {
            hook: "pre_save",
            ..
        }
    );
    assert_eq!(e.path_string(), "dev");
    assert_eq!(e.offset(), Some(0));
    assert!(e.to_string().contains("pre_save says no to 4"), "{e}");
}

#[test]
fn hook_error_custom_type_is_the_source() {
    let e = load_err::<CustomHook>(&[3, 0, 0], 1, "dev", 3);
    assert_kind!(
        e,
        ErrorKind::Hook {
            hook: "post_load",
            ..
        }
    );
    let source = std::error::Error::source(&e).expect("hook error has a source");
    assert_eq!(source.downcast_ref::<DeviceError>().unwrap().code, 103);
    assert_eq!(source.to_string(), "device error 103");

    // post_save errors are reported (after a successful body).
    let e = to_bytes(&CustomHook { a: 1, b: 2 }).unwrap_err();
    assert_kind!(
        e,
        ErrorKind::Hook {
            hook: "post_save",
            ..
        }
    );
    assert_eq!(e.path_string(), "dev");
    assert_eq!(e.offset(), Some(3));
    // A body error wins over the post_save error.
    let mut out = [0u8; 2];
    let mut w = Writer::new(&mut out[..]);
    let e = CustomHook { a: 1, b: 2 }.save(&mut w).unwrap_err();
    assert_kind!(e, ErrorKind::OutputFull { .. });
    assert_eq!((e.path_string().as_str(), e.offset()), ("dev.b", Some(1)));
}

#[test]
fn hook_error_of_our_own_type_keeps_its_kind() {
    load_errs::<OursHook>(
        1,
        &[
            (
                &[0],
                "dev.post_load",
                1,
                kind! { ErrorKind::Invalid(m) if m == "a must not be zero" },
            ),
            // An offset set by the hook is kept.
            (
                &[1],
                "dev.post_load",
                0,
                kind! { ErrorKind::InvalidBool(9) },
            ),
            (
                &[2],
                "dev.post_load",
                1,
                kind! { ErrorKind::NotPositiveLe { found: 2, limit: 1 } },
            ),
        ],
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd/extended_state", version = 1, post_load = FailingSub::post_load)]
struct FailingSub {
    x: u8,
}

impl FailingSub {
    fn post_load(&mut self, _: u32) -> Result<(), String> {
        Err(format!("bad x {}", self.x))
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pckbd", version = 1)]
struct WithFailingSub {
    a: u8,
    #[vmstate(subsection())]
    sub: FailingSub,
}

#[test]
fn hook_error_in_a_subsection() {
    let hdr = sub_header("pckbd/extended_state", 1);
    let b = cat(&[&[0], &hdr, &[9]]);
    let e = load_err::<WithFailingSub>(&b, 1, "pckbd/extended_state", b.len() as u64);
    assert_kind!(
        e,
        ErrorKind::Hook {
            hook: "post_load",
            ..
        }
    );
    assert!(e.to_string().contains("bad x 9"), "{e}");
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev/tmp")]
struct FailingTmp {
    t: u8,
}

impl VmStateTmp<TmpHost> for FailingTmp {
    fn from_parent(p: &TmpHost) -> Result<Self, Error> {
        if p.a == 0xff {
            return Err(Error::invalid("cannot build the view"));
        }
        Ok(FailingTmp { t: p.a })
    }
    fn into_parent(self, _: &mut TmpHost) -> Result<(), Error> {
        if self.t == 0 {
            return Err(Error::invalid("t must not be zero"));
        }
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct TmpHost {
    a: u8,
    #[vmstate(with_tmp)]
    tmp: WithTmp<FailingTmp>,
}

#[test]
fn with_tmp_conversion_errors() {
    let e = load_err::<TmpHost>(&[1, 0], 1, "dev.tmp.into_parent", 2);
    assert_kind!(e, ErrorKind::Invalid(m) if m == "t must not be zero");
    let e = load_err::<TmpHost>(&[1], 1, "dev.tmp.t", 1);
    assert_kind!(e, ErrorKind::Truncated { .. });
    let e = load_err::<TmpHost>(&[0xff, 1], 1, "dev.tmp.from_parent", 1);
    assert_kind!(e, ErrorKind::Invalid(_));
    let e = to_bytes(&TmpHost {
        a: 0xff,
        tmp: WithTmp::new(),
    })
    .unwrap_err();
    assert_eq!(
        (e.path_string().as_str(), e.offset()),
        ("dev.tmp.from_parent", Some(1))
    );
}

#[test]
fn save_refuses_counts_the_loader_would_refuse() {
    // A count above `max` (but within the array) must not be written.
    let dev = Counts {
        n16: 3,
        ..Default::default()
    };
    let e = vmstate_runtime::to_bytes(&dev).unwrap_err();
    assert_kind!(e, ErrorKind::CountOutOfRange { count: 3, max: 2 });
    assert_eq!(e.path_string(), "dev.fixed16");
    let dev = Counts {
        n32: 101,
        vec32: vec![0; 101],
        ..Default::default()
    };
    let e = vmstate_runtime::to_bytes(&dev).unwrap_err();
    assert_kind!(
        e,
        ErrorKind::CountOutOfRange {
            count: 101,
            max: 100
        }
    );
    assert_eq!(e.path_string(), "dev.vec32");
}
