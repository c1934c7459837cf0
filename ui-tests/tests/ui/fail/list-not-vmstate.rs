use vmstate_runtime::VmState;

#[derive(Default)]
struct Req {
    tag: u32,
}

#[derive(VmState, Default)]
#[vmstate(name = "virtio-scsi", version = 1)]
struct VirtioScsi {
    #[vmstate(list, max = 128)]
    reqs: Vec<Req>,
}

fn main() {}
