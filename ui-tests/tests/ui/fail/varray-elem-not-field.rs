use vmstate_runtime::VmState;

// Forgot #[derive(VmState)].
#[derive(Default)]
struct Desc {
    addr: u64,
    len: u32,
}

#[derive(VmState, Default)]
#[vmstate(name = "e1000e", version = 1)]
struct E1000e {
    ndesc: u32,
    #[vmstate(varray(len = ndesc), max = 64)]
    descs: Vec<Desc>,
}

fn main() {}
