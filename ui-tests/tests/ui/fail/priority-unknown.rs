use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "intel-iommu", version = 1, priority = Iomu)]
struct IntelIommu {
    root: u64,
}

fn main() {}
