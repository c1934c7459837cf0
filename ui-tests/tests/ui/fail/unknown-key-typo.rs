use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ide", verison = 3)]
struct Ide {
    cmd: u8,
}

fn main() {}
