use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ps2-mouse", version = 1)]
struct Ps2Mouse {
    status: u8,
    delta: (i32, i32),
}

fn main() {}
