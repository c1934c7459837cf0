// Expansion of the `subsections` case in vmstate-derive/src/expand/output_tests/mod.rs
// (5 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Dev {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "dev",
            version_id: 3u32,
            minimum_version_id: 3u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "status",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                        "mode",
                        <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                    )
                    .with_test(),
                __vmstate::FieldDescription::new(
                    "cache",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
            ],
            subsections: &[
                __vmstate::SubsectionDescription {
                    field: "extra",
                    description: <Extra as __vmstate::VmState>::DESCRIPTION,
                },
                __vmstate::SubsectionDescription {
                    field: "always",
                    description: <Always as __vmstate::VmState>::DESCRIPTION,
                },
            ],
            hooks: __vmstate::Hooks {
                pre_save: true,
                post_save: false,
                pre_load: false,
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
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            let _ = <Always as __vmstate::VmState>::DESCRIPTION;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 3u32;
            let __hook: fn(&Self) -> __vmstate::Result<(), _> = Self::pre_save;
            __vmstate::hook("pre_save", __hook(self))
                .map_err(|__e| __e.with_offset(__w.position()).in_vmsd("dev"))?;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                __vmstate::save_value::<
                    u8,
                    __B,
                    __S,
                >(&self.status, __w, __sink, __desc, 0usize)?;
                {
                    let __test: fn(&Self, __vmstate::u32) -> __vmstate::bool = Self::has_mode;
                    if __test(self, __VERSION) {
                        __vmstate::save_value::<
                            u16,
                            __B,
                            __S,
                        >(&self.mode, __w, __sink, __desc, 1usize)?;
                    }
                }
                {
                    let __needed: fn(&Self) -> __vmstate::bool = Self::extra_needed;
                    if __needed(self) {
                        __vmstate::save_subsection::<
                            Extra,
                            __B,
                            __S,
                        >(&self.extra, __w, __sink)?;
                    }
                }
                __vmstate::save_subsection::<
                    Always,
                    __B,
                    __S,
                >(&self.always, __w, __sink)?;
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("dev"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            let _ = <Always as __vmstate::VmState>::DESCRIPTION;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::load_value::<u8, __B>(&mut self.status, __r, "status")?;
                {
                    let __test: fn(&Self, __vmstate::u32) -> __vmstate::bool = Self::has_mode;
                    if __test(self, __version) {
                        __vmstate::load_value::<u16, __B>(&mut self.mode, __r, "mode")?;
                    }
                }
                let __subsections: &[&'static __vmstate::str] = &[
                    <Extra as __vmstate::VmState>::DESCRIPTION.name,
                    <Always as __vmstate::VmState>::DESCRIPTION.name,
                ];
                while let __vmstate::Option::Some(__h) = __vmstate::next_subsection(
                    "dev",
                    __subsections,
                    __r,
                )? {
                    match __h.index {
                        0usize => {
                            __vmstate::load_subsection::<
                                Extra,
                                __B,
                            >(&mut self.extra, __h, __r)?
                        }
                        1usize => {
                            __vmstate::load_subsection::<
                                Always,
                                __B,
                            >(&mut self.always, __h, __r)?
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
            __result.map_err(|__e| __e.in_vmsd("dev"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Dev {
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
    impl Dev {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Extra as __vmstate::VmState>::DESCRIPTION;
            let _ = <Always as __vmstate::VmState>::DESCRIPTION;
            const _: () = __vmstate::assert!(
                __vmstate::str_eq(< Extra as __vmstate::VmState > ::DESCRIPTION.name,
                "\0vmstate-derive: invalid") || __vmstate::str_starts_with(< Extra as
                __vmstate::VmState > ::DESCRIPTION.name, "dev"),
                "subsection `extra`: its vmsd name must start with the parent's name \"dev\" (QEMU's loader only recognises subsections carrying the parent's prefix); name it e.g. \"dev/extra\""
            );
            const _: () = __vmstate::assert!(
                __vmstate::str_eq(< Always as __vmstate::VmState > ::DESCRIPTION.name,
                "\0vmstate-derive: invalid") || __vmstate::str_starts_with(< Always as
                __vmstate::VmState > ::DESCRIPTION.name, "dev"),
                "subsection `always`: its vmsd name must start with the parent's name \"dev\" (QEMU's loader only recognises subsections carrying the parent's prefix); name it e.g. \"dev/always\""
            );
            const _: () = __vmstate::assert!(
                ! __vmstate::str_eq(< Always as __vmstate::VmState > ::DESCRIPTION.name,
                < Extra as __vmstate::VmState > ::DESCRIPTION.name) ||
                __vmstate::str_eq(< Always as __vmstate::VmState > ::DESCRIPTION.name,
                "\0vmstate-derive: invalid"),
                "duplicate subsection name: the types of `always` and `extra` have the same vmsd name, so the loader could not tell them apart; give each its own #[vmstate(name = ..)]"
            );
        }
    }
};
