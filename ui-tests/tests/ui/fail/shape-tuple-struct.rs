use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pos", version = 1)]
struct Pos(u32, u32);

fn main() {}
