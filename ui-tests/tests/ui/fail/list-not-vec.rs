use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "virtio-gpu/res")]
struct Resource {
    id: u32,
}

#[derive(VmState, Default)]
#[vmstate(name = "virtio-gpu", version = 1)]
struct VirtioGpu {
    #[vmstate(list, max = 64)]
    resources: [Resource; 4],
}

fn main() {}
