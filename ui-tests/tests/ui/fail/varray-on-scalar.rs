use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ne2000", version = 1)]
struct Ne2000 {
    count: u8,
    #[vmstate(varray(len = count))]
    mem: u32,
}

fn main() {}
