use vmstate_runtime::VmState;

#[derive(VmState, Default, Clone, Copy)]
enum LinkState {
    #[default]
    Down,
    Up,
}

#[derive(VmState, Default)]
#[vmstate(name = "nic", version = 1)]
struct Nic {
    link: LinkState,
}

fn main() {}
