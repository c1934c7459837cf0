use vmstate_runtime::{to_bytes, VmState};

// Four independent mistakes: all are reported in one compile, and using the
// type afterwards adds no further errors.
#[derive(VmState, Default)]
#[vmstate(name = "ohci", version = 1, minimum_version = 2)]
struct Ohci {
    #[vmstate(since = 2)]
    ctl: u32,
    num_ports: u64,
    #[vmstate(varray(len = num_ports), max = 15)]
    rhport: Vec<u32>,
    frame_time: f64,
}

fn main() {
    let bytes = to_bytes(&Ohci::default()).unwrap();
    assert!(!bytes.is_empty());
}
