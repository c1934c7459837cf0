use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "stub", version = 1)]
struct Stub;

fn main() {}
