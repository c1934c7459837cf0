use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pckbd", version = 3, post_load = kbd_post_load)]
struct Kbd {
    write_cmd: u8,
    status: u8,
}

// Renamed, but the attribute still says `kbd_post_load`.
fn kbd_outport_post_load(_s: &mut Kbd, _version_id: u32) -> Result<(), String> {
    Ok(())
}

fn main() {}
