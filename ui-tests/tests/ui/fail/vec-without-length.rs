use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "virtio-blk", version = 2)]
struct VirtioBlk {
    rq_count: u32,
    requests: Vec<u32>,
}

fn main() {}
