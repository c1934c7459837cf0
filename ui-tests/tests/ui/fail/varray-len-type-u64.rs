use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "xhci", version = 1)]
struct Xhci {
    numintrs: u64,
    #[vmstate(varray(len = numintrs), max = 16)]
    intr: Vec<u32>,
}

fn main() {}
