use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "virtio-serial", version = 3)]
struct VirtioSerial {
    #[vmstate(positive_le)]
    nr_ports: u32,
}

fn main() {}
