use vmstate_runtime::VmState;

// Values of the wrong form, each reported at the value.
#[derive(VmState, Default)]
#[vmstate(name = es1370, version = "two")]
struct Es1370 {
    ctl: u32,
    count: u8,
    #[vmstate(varray(len = count), max = -1)]
    frames: Vec<u32>,
    #[vmstate(skip = true)]
    scratch: u64,
    #[vmstate(test = 5)]
    sctl: u32,
}

fn main() {}
