use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "watchdog", version = 1)]
struct Watchdog {
    enabled: bool,
    // A timer is `#[vmstate(timer)] Option<u64>`; a plain Option has no encoding.
    deadline: Option<u32>,
}

fn main() {}
