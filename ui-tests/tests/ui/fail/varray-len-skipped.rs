use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "nvme", version = 1)]
struct Nvme {
    // Host-side bookkeeping, not migrated: it cannot carry the count.
    #[vmstate(skip)]
    num_queues: u32,
    #[vmstate(varray(len = num_queues), max = 64)]
    sq_head: Vec<u32>,
}

fn main() {}
