use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "virtio-net", version = 11)]
struct VirtioNet {
    status: u16,
    #[vmstate(skip, since = 11)]
    host_features: u64,
}

fn main() {}
