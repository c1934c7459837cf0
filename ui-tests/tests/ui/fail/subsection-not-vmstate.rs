use vmstate_runtime::VmState;

#[derive(Default)]
struct Msix {
    table: [u32; 4],
}

#[derive(VmState, Default)]
#[vmstate(name = "virtio-pci", version = 1)]
struct VirtioPci {
    config: u32,
    #[vmstate(subsection)]
    msix: Msix,
}

fn main() {}
