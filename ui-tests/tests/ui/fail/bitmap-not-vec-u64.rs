use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "vhost", version = 1)]
struct Vhost {
    nbits: u32,
    #[vmstate(bitmap(len = nbits), max = 4096)]
    dirty: Vec<u32>,
}

fn main() {}
