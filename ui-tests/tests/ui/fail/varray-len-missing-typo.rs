use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "fifo8", version = 1)]
struct Fifo8 {
    queue_len: u32,
    // Typo: the count field is `queue_len`.
    #[vmstate(varray(len = queu_len), max = 256)]
    queue: Vec<u8>,
}

fn main() {}
