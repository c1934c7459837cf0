//! Generated code is hygienic: in a module that shadows the prelude's and `std`'s
//! names (`Result`, `Option`, `Vec`, `Box`, `Error`, `Some`, `Ok`, `Sized`) and even
//! the `core` and `std` crates, every derive (struct with every field kind,
//! subsections, hooks, with_tmp, an enum, a generic) still builds and
//! behaves the same, because the output names only `__private` paths of the
//! runtime.
#![allow(dead_code, non_camel_case_types)]

mod shadowed {
    // Everything the generated code might reach for by its short name.
    pub struct Result;
    pub struct Option;
    pub struct Vec;
    pub struct Box;
    pub struct Error;
    pub struct Sized;
    pub struct Some;
    pub struct None;
    pub struct Ok;
    pub struct Err;
    pub struct String;
    pub mod core {}
    pub mod std {}
    pub mod vmstate {}
    pub mod wire {}
    pub trait VmStateField {}
    pub trait Buf {}
    pub trait BufMut {}

    // The derive recognises `Vec`, `Option` and `Box` fields by their last path
    // segment: the fields below name them by absolute path.
    type StdResult<T> = ::core::result::Result<T, vmstate_runtime::Error>;

    use vmstate_runtime::{VmState, VmStateTmp, WithTmp};

    #[derive(VmState, Default)]
    #[vmstate(name = "hyg/extra", version = 1)]
    pub struct Extra {
        pub x: u8,
    }

    #[derive(VmState, Default)]
    #[vmstate(name = "hyg/elem", version = 1)]
    pub struct Elem {
        pub e: u16,
    }

    #[derive(VmState, Default)]
    #[vmstate(name = "hyg/tmp")]
    pub struct Tmp {
        pub t: u8,
    }

    impl VmStateTmp<Dev> for Tmp {
        fn from_parent(dev: &Dev) -> StdResult<Self> {
            StdResult::Ok(Tmp { t: dev.hidden })
        }
        fn into_parent(self, dev: &mut Dev) -> StdResult<()> {
            dev.hidden = self.t;
            StdResult::Ok(())
        }
    }

    #[derive(VmState, Default, Clone, Copy, PartialEq, Debug)]
    #[repr(u8)]
    pub enum Mode {
        #[default]
        Off = 0,
        On = 1,
    }

    #[derive(VmState, Default)]
    #[vmstate(
        name = "hyg",
        version = 2,
        minimum_version = 1,
        pre_save = Self::pre_save,
        post_save = Self::post_save,
        pre_load = Self::pre_load,
        post_load = Self::post_load
    )]
    pub struct Dev {
        pub a: u8,
        pub b: u32,
        pub regs: [u16; 2],
        pub mode: Mode,
        #[vmstate(since = 2)]
        pub late: u8,
        #[vmstate(test = Self::has_c, validate = Self::valid)]
        pub c: u16,
        pub len: u32,
        #[vmstate(varray(len = len), max = 4)]
        pub fifo: ::std::vec::Vec<u8>,
        pub used: u8,
        #[vmstate(varray(len = used))]
        pub slots: [u16; 4],
        #[vmstate(vbuffer(len = used), max = 4)]
        pub buf: ::std::vec::Vec<u8>,
        pub bits: u32,
        #[vmstate(bitmap(len = bits), max = 128)]
        pub map: ::std::vec::Vec<u64>,
        #[vmstate(list, max = 4)]
        pub list: ::std::vec::Vec<Elem>,
        #[vmstate(unused = 2)]
        pub pad: (),
        #[vmstate(timer)]
        pub deadline: ::core::option::Option<u64>,
        #[vmstate(equal)]
        pub magic: u32,
        #[vmstate(positive_le)]
        pub level: i32,
        pub boxed: ::std::boxed::Box<u8>,
        #[vmstate(with_tmp)]
        pub tmp: WithTmp<Tmp>,
        #[vmstate(skip)]
        pub hidden: u8,
        #[vmstate(subsection(needed = Self::extra_needed))]
        pub extra: Extra,
    }

    impl Dev {
        fn has_c(&self, _version_id: u32) -> bool {
            true
        }
        fn valid(&self, _version_id: u32) -> bool {
            true
        }
        fn extra_needed(&self) -> bool {
            self.extra.x != 0
        }
        fn pre_save(&self) -> StdResult<()> {
            StdResult::Ok(())
        }
        fn post_save(&self) -> StdResult<()> {
            StdResult::Ok(())
        }
        fn pre_load(&mut self) -> StdResult<()> {
            StdResult::Ok(())
        }
        fn post_load(&mut self, _version_id: u32) -> StdResult<()> {
            StdResult::Ok(())
        }
    }

    #[derive(VmState, Default)]
    #[vmstate(name = "hyg/generic", version = 1)]
    pub struct Generic<T: vmstate_runtime::VmStateField + Default, const N: usize>
    where
        [T; N]: Default,
    {
        pub regs: [T; N],
    }
}

fn main() {
    use vmstate_runtime::{from_bytes, to_bytes};

    let dev = shadowed::Dev {
        a: 1,
        mode: shadowed::Mode::On,
        extra: shadowed::Extra { x: 9 },
        hidden: 5,
        ..Default::default()
    };
    let bytes = to_bytes(&dev).unwrap();
    let back: shadowed::Dev = from_bytes(&bytes, 2).unwrap();
    assert_eq!((back.a, back.mode, back.extra.x, back.hidden), (1, shadowed::Mode::On, 9, 5));
    let g = shadowed::Generic::<u16, 2> { regs: [1, 2] };
    assert_eq!(to_bytes(&g).unwrap(), [0, 1, 0, 2]);
}
