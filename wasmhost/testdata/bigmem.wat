;; bigmem.wat: starts with 32 MiB of memory (512 pages).
(module
  (memory (export "memory") 512)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64) (i64.const 0))
)
