use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ring", version = 1)]
struct Ring {
    head: u32,
    tail: u32,
    // No field remotely like `entries_count`: no suggestion.
    #[vmstate(varray(len = entries_count), max = 64)]
    entries: Vec<u32>,
}

fn main() {}
