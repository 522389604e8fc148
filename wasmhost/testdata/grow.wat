;; grow.wat: asks for 1 GiB more memory, ignores the failed memory.grow (-1) and writes where that memory would be: an out-of-bounds trap under any smaller limit.
(module
  (memory (export "memory") 1)
  
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (drop (memory.grow (i32.const 16384))) (i32.store (i32.const 0x40000000) (i32.const 1)) (i64.const 0))
)
