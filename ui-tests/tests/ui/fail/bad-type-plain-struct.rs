use vmstate_runtime::VmState;

// Forgot #[derive(VmState)] here.
#[derive(Default)]
struct Channel {
    count: u32,
    latched: u16,
}

#[derive(VmState, Default)]
#[vmstate(name = "i8257", version = 1)]
struct I8257 {
    command: u8,
    channel: Channel,
}

fn main() {}
