use vmstate_runtime::{from_bytes, to_bytes, VmState};

// `Queue` and `Mode` fail to derive; every use of them below would need their
// impls. The derive emits stand-in impls, so only the two real mistakes are
// reported, not a cascade of "VmState is not implemented" errors.
#[derive(VmState, Default)]
#[vmstate(name = "dev/queue", version = 1)]
struct Queue {
    #[vmstate(since = 2)]
    head: u16,
}

#[derive(VmState, Default, Clone, Copy)]
enum Mode {
    #[default]
    Off,
    On,
}

#[derive(VmState, Default)]
#[vmstate(name = "dev/extra", version = 1)]
struct Extra {
    queue: Queue,
}

#[derive(VmState, Default)]
#[vmstate(name = "dev", version = 1)]
struct Dev {
    mode: Mode,
    modes: [Mode; 2],
    queue: Queue,
    boxed: Box<Queue>,
    #[vmstate(list, max = 4)]
    queues: Vec<Queue>,
    #[vmstate(subsection)]
    q: Queue,
    #[vmstate(subsection)]
    extra: Extra,
}

fn main() {
    let bytes = to_bytes(&Dev::default()).unwrap();
    let _ = from_bytes::<Dev>(&bytes, 1);
    let _ = to_bytes(&Queue::default());
}
