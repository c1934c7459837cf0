use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "scsi-disk", version = 1)]
struct ScsiDisk {
    nr_sectors: u32,
    // A count from the stream must be bounded before anything is allocated.
    #[vmstate(varray(len = nr_sectors))]
    sectors: Vec<u64>,
}

fn main() {}
