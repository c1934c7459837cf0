//! Hook order

use super::*;

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// `pre_save`, `post_save` and `pre_load` hooks for `$ty` that log their
/// name after `$prefix`.
macro_rules! logging_hooks {
    ($ty:ty, $prefix:literal) => {
        impl $ty {
            fn pre_save(&self) -> Result<(), Error> {
                log(concat!($prefix, "pre_save"));
                Ok(())
            }
            fn post_save(&self) -> Result<(), Error> {
                log(concat!($prefix, "post_save"));
                Ok(())
            }
            fn pre_load(&mut self) -> Result<(), Error> {
                log(concat!($prefix, "pre_load"));
                Ok(())
            }
        }
    };
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(
    name = "hooked/sub",
    version = 1,
    pre_save = HookSub::pre_save,
    post_save = HookSub::post_save,
    pre_load = HookSub::pre_load,
    post_load = HookSub::post_load
)]
pub(super) struct HookSub {
    v: u8,
}

logging_hooks!(HookSub, "sub.");

impl HookSub {
    fn post_load(&mut self, version_id: u32) -> Result<(), Error> {
        log(format!("sub.post_load v{version_id}"));
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hooked/tmp")]
struct HookTmp {
    t: u8,
}

impl VmStateTmp<Hooked> for HookTmp {
    fn from_parent(p: &Hooked) -> Result<Self, Error> {
        log("tmp.from_parent");
        Ok(HookTmp { t: p.b })
    }
    fn into_parent(self, _p: &mut Hooked) -> Result<(), Error> {
        log("tmp.into_parent");
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(
    name = "hooked",
    version = 2,
    minimum_version = 1,
    pre_save = Hooked::pre_save,
    post_save = Hooked::post_save,
    pre_load = Hooked::pre_load,
    post_load = Hooked::post_load
)]
struct Hooked {
    #[vmstate(test = Hooked::test_a)]
    a: u8,
    #[vmstate(validate = Hooked::validate_b)]
    b: u8,
    #[vmstate(with_tmp)]
    tmp: WithTmp<HookTmp>,
    #[vmstate(subsection(needed = Hooked::sub_needed))]
    sub: HookSub,
}

logging_hooks!(Hooked, "");

impl Hooked {
    fn post_load(&mut self, version_id: u32) -> Result<(), Error> {
        log(format!("post_load v{version_id} sub={}", self.sub.v));
        Ok(())
    }
    fn test_a(&self, version_id: u32) -> bool {
        log(format!("test a v{version_id}"));
        true
    }
    fn validate_b(&self, _version_id: u32) -> bool {
        log(format!("validate b={}", self.b));
        true
    }
    fn sub_needed(&self) -> bool {
        log("needed");
        self.sub.v != 0
    }
}

/// Every hook of a whole save of [`sample`], in order.
const FULL_SAVE_LOG: [&str; 7] = [
    "pre_save",
    "test a v2",
    "tmp.from_parent",
    "needed",
    "sub.pre_save",
    "sub.post_save",
    "post_save",
];

/// A `Hooked` whose subsection is needed.
fn sample() -> Hooked {
    Hooked {
        a: 1,
        b: 2,
        tmp: WithTmp::new(),
        sub: HookSub { v: 3 },
    }
}

/// Saves `v` into a buffer of `len` bytes, too small for it: the error.
fn save_into(v: &Hooked, len: usize) -> Error {
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out[..]);
    v.save(&mut w).unwrap_err()
}

#[test]
fn save_hook_order() {
    let v = sample();
    take_log();
    let bytes = to_bytes(&v).unwrap();
    assert_eq!(take_log(), FULL_SAVE_LOG);
    assert_eq!(
        bytes,
        cat(&[&[1, 2, 2], &sub_header("hooked/sub", 1), &[3]])
    );
}

#[test]
fn load_hook_order() {
    let wire = cat(&[&[1, 2, 2], &sub_header("hooked/sub", 1), &[3]]);
    take_log();
    let back: Hooked = from_bytes(&wire, 1).unwrap();
    assert_eq!(back.sub.v, 3);
    // `needed` is never called on load; the subsection's hooks run inside it, before
    // the parent's post_load, which sees the subsection's data.
    assert_eq!(
        take_log(),
        [
            "pre_load",
            "test a v1",
            "validate b=2",
            "tmp.from_parent",
            "tmp.into_parent",
            "sub.pre_load",
            "sub.post_load v1",
            "post_load v1 sub=3"
        ]
    );
    // Without the subsection, its hooks do not run at all.
    let _: Hooked = from_bytes(&[1, 2, 2], 2).unwrap();
    assert_eq!(
        take_log(),
        [
            "pre_load",
            "test a v2",
            "validate b=2",
            "tmp.from_parent",
            "tmp.into_parent",
            "post_load v2 sub=0"
        ]
    );
    // Version checks come before pre_load.
    assert!(from_bytes::<Hooked>(&[1, 2, 2], 3).is_err());
    assert!(take_log().is_empty());
}

#[test]
fn post_save_runs_even_when_save_fails() {
    let v = sample();
    take_log();
    let e = save_into(&v, 1);
    assert_kind!(e, ErrorKind::OutputFull { .. });
    assert_eq!(e.path_string(), "hooked.b");
    assert_eq!(take_log(), ["pre_save", "test a v2", "post_save"]);
    // A failure inside the subsection runs both post_saves.
    let e = save_into(&v, 5);
    assert_kind!(e, ErrorKind::OutputFull { .. });
    assert_eq!(
        take_log(),
        [
            "pre_save",
            "test a v2",
            "tmp.from_parent",
            "needed",
            "post_save"
        ]
    );
    let need = 3 + sub_header("hooked/sub", 1).len();
    let e = save_into(&v, need);
    assert_eq!(e.path_string(), "hooked/sub.v");
    assert_eq!(e.offset(), Some(need as u64));
    assert_eq!(take_log(), FULL_SAVE_LOG);
}
