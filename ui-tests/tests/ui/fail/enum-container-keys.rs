use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "mode", version = 2)]
#[repr(u8)]
enum Mode {
    #[default]
    Idle = 0,
    Busy = 1,
}

fn main() {}
