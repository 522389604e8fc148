;; noexport.wat: has the ABI marker and allocator but no husk_decide.
(module
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
)
