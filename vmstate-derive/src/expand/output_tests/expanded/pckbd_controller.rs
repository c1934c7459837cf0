// Expansion of the `pckbd_controller` case in vmstate-derive/src/expand/output_tests/mod.rs
// (12 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for KbdState {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "pckbd",
            version_id: 3u32,
            minimum_version_id: 3u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "write_cmd",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "status",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mode",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "pending_tmp",
                    <SaveComputed<u8> as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "pending",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
                __vmstate::FieldDescription::new(
                    "extended_state",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
                __vmstate::FieldDescription::new(
                    "throttle",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
                __vmstate::FieldDescription::new(
                    "throttle_deadline",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
                __vmstate::FieldDescription::new(
                    "irq_kbd",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
                __vmstate::FieldDescription::new(
                    "irq_mouse",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
            ],
            subsections: &[
                __vmstate::SubsectionDescription {
                    field: "outport",
                    description: <Outport as __vmstate::VmState>::DESCRIPTION,
                },
                __vmstate::SubsectionDescription {
                    field: "ext",
                    description: <ExtendedState as __vmstate::VmState>::DESCRIPTION,
                },
            ],
            hooks: __vmstate::Hooks {
                pre_save: true,
                post_save: false,
                pre_load: true,
                post_load: true,
            },
        };
        #[inline]
        fn save_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <SaveComputed<u8> as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Outport as __vmstate::VmState>::DESCRIPTION;
            let _ = <ExtendedState as __vmstate::VmState>::DESCRIPTION;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 3u32;
            let __hook: fn(&Self) -> __vmstate::Result<(), _> = Self::pre_save;
            __vmstate::hook("pre_save", __hook(self))
                .map_err(|__e| __e.with_offset(__w.position()).in_vmsd("pckbd"))?;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <u8 as __vmstate::PlainField>::put_plain(&self.write_cmd, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.status, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.mode, __buf);
                } else {
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.write_cmd, __w, __sink, __desc, 0usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.status, __w, __sink, __desc, 1usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mode, __w, __sink, __desc, 2usize)?;
                }
                __vmstate::save_value::<
                    SaveComputed<u8>,
                    __B,
                    __S,
                >(&self.pending_tmp, __w, __sink, __desc, 3usize)?;
                {
                    let __needed: fn(&Self) -> __vmstate::bool = Self::outport_not_default;
                    if __needed(self) {
                        __vmstate::save_subsection::<
                            Outport,
                            __B,
                            __S,
                        >(&self.outport, __w, __sink)?;
                    }
                }
                {
                    let __needed: fn(&Self) -> __vmstate::bool = Self::sends_extended_state;
                    if __needed(self) {
                        __vmstate::save_subsection::<
                            ExtendedState,
                            __B,
                            __S,
                        >(&self.ext, __w, __sink)?;
                    }
                }
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("pckbd"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <SaveComputed<u8> as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Outport as __vmstate::VmState>::DESCRIPTION;
            let _ = <ExtendedState as __vmstate::VmState>::DESCRIPTION;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                let __hook: fn(&mut Self) -> __vmstate::Result<(), _> = Self::pre_load;
                __vmstate::hook("pre_load", __hook(self))
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                if !__r
                    .consume_contiguous_if(
                        0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<u8>(&mut self.write_cmd);
                            __run.decode::<u8>(&mut self.status);
                            __run.decode::<u8>(&mut self.mode);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.write_cmd, __r, "write_cmd")?;
                    __vmstate::load_value::<u8, __B>(&mut self.status, __r, "status")?;
                    __vmstate::load_value::<u8, __B>(&mut self.mode, __r, "mode")?;
                }
                __vmstate::load_value::<
                    SaveComputed<u8>,
                    __B,
                >(&mut self.pending_tmp, __r, "pending_tmp")?;
                let __subsections: &[&'static __vmstate::str] = &[
                    <Outport as __vmstate::VmState>::DESCRIPTION.name,
                    <ExtendedState as __vmstate::VmState>::DESCRIPTION.name,
                ];
                while let __vmstate::Option::Some(__h) = __vmstate::next_subsection(
                    "pckbd",
                    __subsections,
                    __r,
                )? {
                    match __h.index {
                        0usize => {
                            __vmstate::load_subsection::<
                                Outport,
                                __B,
                            >(&mut self.outport, __h, __r)?
                        }
                        1usize => {
                            __vmstate::load_subsection::<
                                ExtendedState,
                                __B,
                            >(&mut self.ext, __h, __r)?
                        }
                        _ => {
                            return __vmstate::Result::Err(
                                __vmstate::subsection_index_out_of_range(),
                            );
                        }
                    }
                }
                let __hook: fn(&mut Self, __vmstate::u32) -> __vmstate::Result<(), _> = Self::post_load;
                __vmstate::hook("post_load", __hook(self, __version))
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("pckbd"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for KbdState {
        const FIELD_TYPE: __vmstate::FieldType = __vmstate::struct_type(
            <Self as __vmstate::VmState>::DESCRIPTION,
        );
        #[inline]
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            __w: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::save_struct(self, __w)
        }
        #[inline]
        fn save_field_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            <Self as __vmstate::VmState>::save_with(self, __w, __sink)
        }
        #[inline]
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::load_struct(self, __r)
        }
    }
    #[automatically_derived]
    impl KbdState {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <SaveComputed<u8> as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Outport as __vmstate::VmState>::DESCRIPTION;
            let _ = <ExtendedState as __vmstate::VmState>::DESCRIPTION;
            const _: () = __vmstate::assert!(
                __vmstate::str_eq(< Outport as __vmstate::VmState > ::DESCRIPTION.name,
                "\0vmstate-derive: invalid") || __vmstate::str_starts_with(< Outport as
                __vmstate::VmState > ::DESCRIPTION.name, "pckbd"),
                "subsection `outport`: its vmsd name must start with the parent's name \"pckbd\" (QEMU's loader only recognises subsections carrying the parent's prefix); name it e.g. \"pckbd/outport\""
            );
            const _: () = __vmstate::assert!(
                __vmstate::str_eq(< ExtendedState as __vmstate::VmState > ::DESCRIPTION
                .name, "\0vmstate-derive: invalid") || __vmstate::str_starts_with(<
                ExtendedState as __vmstate::VmState > ::DESCRIPTION.name, "pckbd"),
                "subsection `ext`: its vmsd name must start with the parent's name \"pckbd\" (QEMU's loader only recognises subsections carrying the parent's prefix); name it e.g. \"pckbd/ext\""
            );
            const _: () = __vmstate::assert!(
                ! __vmstate::str_eq(< ExtendedState as __vmstate::VmState > ::DESCRIPTION
                .name, < Outport as __vmstate::VmState > ::DESCRIPTION.name) ||
                __vmstate::str_eq(< ExtendedState as __vmstate::VmState > ::DESCRIPTION
                .name, "\0vmstate-derive: invalid"),
                "duplicate subsection name: the types of `ext` and `outport` have the same vmsd name, so the loader could not tell them apart; give each its own #[vmstate(name = ..)]"
            );
        }
    }
};
