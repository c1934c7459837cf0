use vmstate_runtime::VmState;

// A generic register bank; the bound `T: VmStateField` is missing.
#[derive(VmState, Default)]
#[vmstate(name = "regs", version = 1)]
struct Regs<T> {
    ctrl: u32,
    bank: [T; 4],
}

fn main() {}
