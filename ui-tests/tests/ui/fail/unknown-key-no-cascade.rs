use vmstate_runtime::VmState;

// Two typos, two errors: the misspelled `version` does not make `since = 2`
// look wrong, and the misspelled `skip` does not make `String` an error too.
#[derive(VmState, Default)]
#[vmstate(name = "virtio-console", verison = 2)]
struct VirtioConsole {
    cols: u16,
    #[vmstate(since = 2)]
    rows: u16,
    #[vmstate(skp)]
    label: String,
}

fn main() {}
