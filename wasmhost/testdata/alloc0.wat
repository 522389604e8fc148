;; alloc0.wat: its allocator always fails.
(module
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64) (i64.const 0))
)
