use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "kbd", version = 3, pre_save = kbd_pre_save)]
struct Kbd {
    write_cmd: u8,
    status: u8,
    mode: u8,
}

// Wrong: pre_save cannot change the device, it gets `&Self`.
fn kbd_pre_save(s: &mut Kbd) -> Result<(), String> {
    s.status &= 0x7f;
    Ok(())
}

fn main() {}
