use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "chardev", version = 1)]
struct Chardev {
    connected: bool,
    label: String,
}

fn main() {}
