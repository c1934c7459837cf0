use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "mc146818rtc", version = 3)]
struct Rtc {
    cmos_index: u8,
    #[vmstate(timer)]
    periodic_timer: u64,
}

fn main() {}
