use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "virtio-balloon", version = 1)]
struct Balloon {
    nbits: u32,
    #[vmstate(bitmap(len = nbits))]
    free_page_bitmap: Vec<u64>,
}

fn main() {}
